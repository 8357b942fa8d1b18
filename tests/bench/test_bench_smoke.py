"""Smoke tests of bench_baseline.py, bench_slack.py and bench_ingest.py on tiny inputs, so they do not rot."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import LIBRARY

BENCH = Path(__file__).resolve().parents[2] / "bench"


def bench_module(name: str) -> ModuleType:
    """Import a bench script as a module (bench/ is not a package)."""
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    return __import__(name)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Our ingest of the first 80 library rows (bench_baseline's worker), shared by both tests."""
    baseline = bench_module("bench_baseline")
    folder = tmp_path_factory.mktemp("bench")
    config = {
        "library": str(LIBRARY),
        "rows": 80,
        "csv": str(folder / "prompts_unique.csv"),
        "data_dir": str(folder / "ours"),
        "faiss_dir": str(folder / "faiss"),
        "idea": "a cartoon of a little dog",
        "index": str(folder / "ours" / "index" / "prompts"),
    }
    return {"config": config, "folder": folder, "ingest": baseline.ours_ingest(config)}


def test_baseline_bench_runs_both_pipelines_on_a_few_rows(tiny: dict[str, Any]) -> None:
    baseline = bench_module("bench_baseline")
    pipeline = bench_module("baseline_pipeline")
    latency = bench_module("baseline_latency")
    if baseline.missing_extras():  # `make bench` installs .[bench]; `make test` does not
        pytest.skip(f"bench extra not installed: {baseline.missing_extras()}")
    unique, calls = baseline.remove_similar_strings(["a b c", "a b d", "something else entirely here"], 1)
    assert unique == ["a b c", "something else entirely here"] and calls == 2
    config = tiny["config"]
    prep = baseline.baseline_prep(config)
    assert 0 < prep["kept"] <= prep["filtered"] <= prep["rows"] == 80
    session = baseline.baseline_session(config)
    persist = pipeline.baseline_persist(config)
    persisted = pipeline.baseline_persisted_session(config)
    ours = baseline.ours_session(config)
    speed = latency.search_latency({"index": config["index"], "queries": 8})
    assert len(session["hits"]) == pipeline.BASELINE_K and session["documents"] == prep["kept"]
    assert persist["documents"] == persisted["documents"] == prep["kept"] and persist["disk_mb"] > 0
    assert persisted["hits"] == session["hits"]  # the saved store answers as the rebuilt one
    assert ours["hits"] and tiny["ingest"]["indexed"] > 0
    assert speed["documents"] == tiny["ingest"]["indexed"] and speed["faiss_index"] == "IndexFlatL2"
    assert {m: int(v["n"]) for m, v in speed["latency"].items()} == dict.fromkeys(latency.METHODS, 5)
    for row in (session, persisted, ours):
        row["process_s"] = row["answer_s"]
    markdown = baseline.render(
        {
            "idea": config["idea"],
            "baseline_prep": prep,
            "ours_ingest": tiny["ingest"],
            "baseline_persist": persist,
            "baseline_sessions": [session],
            "persisted_sessions": [persisted],
            "ours_sessions": [ours],
            "latency": speed,
        }
    )
    assert "baseline / ours" not in markdown and "persisted FAISS" in markdown and "Levenshtein" in markdown
    assert "Per-query search at the same size" in markdown and "ours ÷ FAISS" in markdown


def test_slack_bench_measures_acks_answers_and_memory(
    tiny: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    slack = bench_module("bench_slack")
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
    ):
        monkeypatch.setenv(name, "unset")  # the worker overwrites these; monkeypatch restores them
    scratch = tiny["folder"] / "slack"
    scratch.mkdir()
    result = slack.worker(
        {
            "label": "tiny",
            "size": tiny["ingest"]["indexed"],
            "index": tiny["config"]["index"],
            "scratch": str(scratch),
            "levels": [1, 3],
            "ack_samples": 3,
            "answers": 2,
            "ideas": slack.load_ideas(2),
            "models": ["offline", "bedrock"],
        }
    )
    assert result["acks"]["3"]["ok"] == 3
    for models in ("offline", "bedrock"):
        warm = result["models"][models]["warm"]
        assert 0 < warm["hits_ms"]["p50_ms"] <= warm["upload_ms"]["p50_ms"]
    assert result["memory"]["peak_rss_mb"] > 0
    args = argparse.Namespace(wanted_sizes=[result["size"]], skip_note="")
    markdown = slack.render([result], {}, args)
    assert "ack latency" in markdown and "bedrock" in markdown


def test_ingest_bench_interleaves_raw_and_ingest_and_writes_the_cache(tmp_path: Path) -> None:
    ingest = bench_module("bench_ingest")
    ingest_ab = bench_module("ingest_ab")
    common = bench_module("common")
    interleaved = bench_module("interleaved")
    calls: list[tuple[int, str]] = []

    def side(name: str) -> Any:
        def work(block: int) -> int:
            calls.append((block, name))
            return 10

        return work

    sides = {name: side(name) for name in ("raw", "ingest")}
    times = interleaved.interleave([0, 1, 2], sides)
    assert calls == [(0, "raw"), (0, "ingest"), (1, "ingest"), (1, "raw"), (2, "raw"), (2, "ingest")]
    assert [done for done, _, _ in times["ingest"]] == [10, 10, 10]
    out = tmp_path / "out"
    args = [
        "--limit",
        "150",
        "--block-size",
        "50",
        "--out-dir",
        str(out),
        "--shared-data",
        str(LIBRARY.parent),
    ]
    result = ingest.run(ingest.parse_args([*args, "--no-padding-check"]))
    ab, kept = result["ab"], result["summary"]["kept"]
    assert ab["blocks"] == round(kept / 50) and ab["base_items"] == ab["test_items"] == kept
    assert ab["min"] <= ab["median"] <= ab["max"] and ab["ratio"] > 0
    cache = common.load_library_cache(out)
    assert len(cache) == kept == result["count_in_index"] and cache.ids == sorted(cache.ids)
    assert not (out / ingest_ab.SCRATCH).exists()
    markdown = ingest.render(result)
    assert "Interleaved A/B" in markdown and "per-block ratio" in markdown


def test_layout_bench_measures_both_layouts_on_a_small_cache(tmp_path: Path) -> None:
    import numpy as np

    bench = bench_module("bench_layout")
    workers = bench_module("layout_workers")
    common = bench_module("common")
    search = bench_module("bench_search")
    rng = np.random.default_rng(2)
    vectors = rng.standard_normal((300, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"00000000-0000-0000-0000-{i:012d}" for i in range(300)]
    prompts = [f"a painting of {i} red foxes, oil on canvas" for i in range(300)]
    payloads = [
        {"prompt": p, "source": "lexica" if i % 2 else "krea", "safe": True} for i, p in enumerate(prompts)
    ]
    common.save_library_cache(tmp_path, common.LibraryCache(ids, prompts, payloads, vectors))
    queries_file = tmp_path / "queries.json"
    queries_file.write_text(json.dumps(search.make_queries(tmp_path, BENCH / "labelled_ideas.json", 5)))
    base = {"out_dir": str(tmp_path), "size": 300, "queries_file": str(queries_file)}
    row: dict[str, Any] = {"size": 300, "builds": {}, "serve": {}}
    paths = {}
    for layout in bench.LAYOUTS:
        row["builds"][layout.value] = workers.worker_build({**base, "layout": layout.value})
        paths[layout.value] = str(bench.synthetic_index_dir(tmp_path, 300, layout) / "index")
    truth = workers.worker_truth({**base, "index": paths["in_ram"]})
    for name, path in paths.items():
        served = workers.worker_serve({**base, "index": path, "long_run": 20})
        served["recall"] = {
            m: search.overlap_at(served["ids"][m], truth["exact"][m]) for m in search.RECALL_MODES
        }
        row["serve"][name] = served
    row["truth"] = truth
    row["latency"] = workers.worker_latency({**base, "indexes": paths})
    row["n_queries"] = 5

    assert truth["engine_vs_numpy_dense"] == 1.0
    assert [row["serve"][n]["layout"] for n in paths] == ["in_ram", "compact"]
    assert all(row["serve"][n]["recall"]["dense"] == 1.0 for n in paths)  # 300 points: scanned, exact
    assert set(row["latency"]["latency"]["compact"]) == {*search.MODES, "search"}
    assert row["serve"]["compact"]["memory"]["long"]["VmRSS"] > 0
    assert "| dense recall@10 vs exact | 1.000 | 1.000 |" in bench.size_table(row)


def test_compose_bench_compares_the_composer_before_and_after(tiny: dict[str, Any], tmp_path: Path) -> None:
    import json

    compose = bench_module("bench_compose")
    ideas = tmp_path / "ideas.json"
    concepts = {"subject": ["dogs?"]}
    items = [
        {"idea": "a cartoon of a little dog", "kind": "plain", "split": "tuning", "concepts": concepts},
        {"idea": "a dog in the snow", "kind": "plain", "split": "heldout", "concepts": concepts},
    ]
    ideas.write_text(json.dumps({"ideas": items}), encoding="utf-8")
    out = tmp_path / "compose.json"
    args = ["--index-dir", tiny["config"]["index"], "--ideas", str(ideas), "--parti-n", "0"]
    args += ["--before-ref", "HEAD"]  # any ref: the BEFORE composer is read from git
    assert compose.main([*args, "--json-out", str(out), "--markdown-out", str(tmp_path / "c.md")]) == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    composers = {row["composer"].split(" ")[0].rstrip(",") for row in result["rows"]}
    dense = [row for row in result["rows"] if "dense" in row["composer"]]
    assert composers == {"before", "after"} and len(result["rows"]) == 2 * 2 * 3 + 2  # halves × dialects
    assert [(row["group"], row["dialect"]) for row in dense] == [("tuning", "prose"), ("heldout", "prose")]
    assert all(row["ideas"] == 1 and row["subject_kept"] == 1.0 for row in result["rows"])
    text = (tmp_path / "c.md").read_text(encoding="utf-8")
    assert "## Composition" in text and "| after (this tree) | heldout | prose | 1 |" in text
