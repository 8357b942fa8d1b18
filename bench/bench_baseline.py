"""The AWS sample's pipeline (aws-samples/stable-diffusion-prompt-rag) vs ours, same library, same embedder.

Baseline, as in the sample's imgrag_prep.py / imgrag_lib.py: the first N (10,000) prompts of the library,
keep those of >= 10 words, drop every prompt within Levenshtein distance 10 of an already kept one (O(n²),
`Levenshtein.distance`, one `ThreadPoolExecutor().submit(...).result()` per prompt like the sample), write
the first 1,000 survivors to a CSV with the header `prompt example`; then per session (the sample caches
the index only in Streamlit's `st.session_state`): load that CSV as CSVLoader does, re-embed it with
`FAISS.from_texts` and answer with `similarity_search` (k=4). Ours: `retrieval.ingest.Ingestor` on the same
N rows into the embedded Qdrant Edge index, then per session: open the index and answer with
`Retriever.search` (hybrid + MMR, k=5). Both embed with our OnnxMiniLMEmbedder (wrapped as a LangChain
`Embeddings` for FAISS), so the embedder is not what differs. A third side is the sample as it would run
with a persisted index: the CSV embedded once and `FAISS.save_local`d, then per session `FAISS.load_local`
+ `similarity_search`. Each step runs in a fresh process so its peak RSS is its own. Per-query search
latency is also compared at the same size (baseline_latency.py: a FAISS store of our index's own prompts
and vectors vs our index, query by query). Needs the `bench` extra (faiss-cpu, langchain-community,
Levenshtein).

`--whole-library` also measures both per-session paths over the whole library: the baseline's sessions
re-embed every library prompt of >= 10 words (no dedupe: the O(n²) dedupe at that size stays
extrapolated), ours ingests every row once and then opens the index per session. The steps themselves
live in baseline_pipeline.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from baseline_latency import search_latency
from baseline_pipeline import (
    IDEAS,
    MIN_WORDS,
    baseline_persist,
    baseline_persisted_session,
    baseline_prep,
    baseline_prep_all,
    baseline_session,
    library_rows,
    missing_extras,
    ours_ingest,
    ours_session,
)
from baseline_pipeline import remove_similar_strings as remove_similar_strings  # for the smoke test
from baseline_report import render
from common import (
    REPO,
    Timer,
    add_common_args,
    fresh_dir,
    library_path,
    machine_busy_seconds,
    percentile,
    setup_logging,
    write_outputs,
)

logger = logging.getLogger("bench_baseline")

WORKERS = {
    "baseline-prep": baseline_prep,
    "baseline-prep-all": baseline_prep_all,
    "baseline-session": baseline_session,
    "baseline-persist": baseline_persist,
    "persisted-session": baseline_persisted_session,
    "ours-ingest": ours_ingest,
    "ours-session": ours_session,
    "search-latency": search_latency,
}
LATENCY_QUERIES = 200


def run_worker(kind: str, config: dict[str, Any], scratch: Path, tag: str = "") -> dict[str, Any]:
    """Run one step in a fresh process; its JSON result plus wall time (Python start incl.) and CPU share."""
    config_file = scratch / f"{kind}{tag}.config.json"
    result_file = scratch / f"{kind}{tag}.result.json"
    result_file.unlink(missing_ok=True)
    config_file.write_text(json.dumps({**config, "result": str(result_file)}), encoding="utf-8")
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", kind, str(config_file)]
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = machine_busy_seconds()[0]
    with Timer() as wall:
        done = subprocess.run(command, cwd=REPO, check=False)
    children_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy_seconds()[0] - busy_before
    if done.returncode != 0 or not result_file.is_file():
        raise SystemExit(f"{kind} worker failed with exit status {done.returncode}")
    result: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    cpu = (children_after.ru_utime - children_before.ru_utime) + (
        children_after.ru_stime - children_before.ru_stime
    )
    result["process_s"] = wall.seconds
    result["cpu_s"] = cpu
    result["others_cores"] = max(0.0, busy - cpu) / wall.seconds if wall.seconds > 0 else 0.0
    return result


def measure_sessions(config: dict[str, Any], scratch: Path, sessions: int, tag: str) -> dict[str, Any]:
    """The persisted-FAISS one-time step, then the sessions of the three sides alternated, then the
    same-size search latency; `config` names the CSV, our index and the FAISS folder."""
    persist = run_worker("baseline-persist", config, scratch, tag=tag)
    logger.info(
        "persisted FAISS%s: %d documents in %.1f s", tag, persist["documents"], persist["embed_index_s"]
    )
    sides: dict[str, list[dict[str, Any]]] = {"baseline": [], "persisted": [], "ours": []}
    for n in range(sessions):
        for side, kind in (("baseline", "baseline-session"), ("persisted", "persisted-session")):
            sides[side].append(run_worker(kind, config, scratch, tag=tag))
        sides["ours"].append(run_worker("ours-session", config, scratch, tag=tag))
        logger.info(
            "session%s %d: %s",
            tag,
            n,
            ", ".join(f"{side} {rows[-1]['process_s']:.2f} s" for side, rows in sides.items()),
        )
    latency = run_worker("search-latency", {**config, "queries": LATENCY_QUERIES}, scratch, tag=tag)
    return {
        "baseline_persist": persist,
        "baseline_sessions": sides["baseline"],
        "persisted_sessions": sides["persisted"],
        "ours_sessions": sides["ours"],
        "latency": latency,
    }


def measure_whole_library(
    library: Path, rows: int, idea: str, sessions: int, scratch: Path
) -> dict[str, Any]:
    """Baseline (filter only, re-embed all per session) vs ours (ingest all once) over the whole library."""
    config = {
        "library": str(library),
        "rows": rows,
        "csv": str(scratch / "prompts_all.csv"),
        "data_dir": str(scratch / "ours_all"),
        "faiss_dir": str(scratch / "faiss_all"),
        "idea": idea,
    }
    logger.info("whole library: baseline CSV of every >= %d-word prompt of %d rows", MIN_WORDS, rows)
    prep = run_worker("baseline-prep-all", config, scratch)
    logger.info("whole library: %d prompts; our ingest over %d rows", prep["filtered"], rows)
    ingest = run_worker("ours-ingest", config, scratch, tag="-all")
    logger.info("whole library: ours indexed %d in %.0f s", ingest["indexed"], ingest["ingest_s"])
    config["index"] = str(scratch / "ours_all" / "index" / "prompts")
    return {
        "note": "measured at the whole library; baseline without the O(n²) dedupe",
        "baseline_prep": prep,
        "ours_ingest": ingest,
        **measure_sessions(config, scratch, sessions, "-all"),
    }


def main(argv: list[str] | None = None) -> int:
    """Run the steps and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--rows", type=int, default=10_000, help="first rows of the library (sample: 10,000)")
    parser.add_argument("--sessions", type=int, default=5, help="sessions (fresh processes) per side")
    parser.add_argument(
        "--whole-library",
        action="store_true",
        help="also measure --sessions sessions per side over the whole library: the baseline re-embeds "
        "every >= 10-word prompt (no dedupe) per session, ours ingests every row once (adds ~15-25 min)",
    )
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.worker is not None:
        kind, config_file = args.worker
        config = json.loads(Path(config_file).read_text(encoding="utf-8"))
        output = WORKERS[kind](config)
        Path(config["result"]).write_text(json.dumps(output), encoding="utf-8")
        return 0
    missing = missing_extras()
    if missing:
        message = (
            f"bench_baseline skipped: {', '.join(missing)} not installed; "
            "install the bench extra: .venv/bin/pip install -e '.[bench]'"
        )
        logger.warning(message)
        write_outputs(f"## AWS sample vs ours\n\nNot run: {message}.\n", {"skipped": message}, args)
        return 0
    load_start = list(os.getloadavg())
    library = library_path(args.shared_data)
    scratch = fresh_dir(args.out_dir / "baseline", args.out_dir)
    idea = IDEAS[0]
    config = {
        "library": str(library),
        "rows": args.rows,
        "csv": str(scratch / "prompts_unique.csv"),
        "data_dir": str(scratch / "ours"),
        "faiss_dir": str(scratch / "faiss"),
        "idea": idea,
    }
    logger.info("baseline prep over %d rows", args.rows)
    prep = run_worker("baseline-prep", config, scratch)
    logger.info("baseline prep: %s", {k: v for k, v in prep.items() if k != "hits"})
    logger.info("our ingest over %d rows", args.rows)
    ingest = run_worker("ours-ingest", config, scratch)
    config["index"] = str(scratch / "ours" / "index" / "prompts")
    result: dict[str, Any] = {
        "idea": idea,
        "load_average_start": load_start,
        "baseline_prep": prep,
        "ours_ingest": ingest,
        **measure_sessions(config, scratch, args.sessions, ""),
    }
    full = library_rows(library)
    if prep["levenshtein_calls"] and full > prep["rows"]:
        scale = full / prep["rows"]
        filtered, unique = prep["filtered"] * scale, prep["unique"] * scale
        calls = prep["levenshtein_calls"] * scale**2
        per_call = prep["dedupe_s"] / prep["levenshtein_calls"]
        embed_rate = prep["kept"] / percentile([s["embed_index_s"] for s in result["baseline_sessions"]], 50)
        result["extrapolation"] = {
            "rows": full,
            "filtered": int(filtered),
            "unique": int(unique),
            "calls": calls,
            "per_call_s": per_call,
            "dedupe_h": calls * per_call / 3600,
            "embed_s": unique / embed_rate,
        }
    if args.whole_library:
        result["whole_library"] = measure_whole_library(library, full, idea, args.sessions, scratch)
    write_outputs(render(result), result, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
