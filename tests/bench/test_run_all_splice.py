"""run_all's splice: a section re-run after the whole run is named, with its commit, in the header."""

from __future__ import annotations

from tests.bench.test_bench_smoke import bench_module

HEAD = "# imagine-bot benchmark results\n\n* Commit: c543afa (every section below)\n* Machine: AMD EPYC"


def test_the_commit_line_names_sections_spliced_later() -> None:
    run_all = bench_module("run_all")
    once = run_all.note_spliced(HEAD, {"retrieval": "bec4568"})
    assert "* Commit: c543afa (every other section; spliced later: retrieval at bec4568)" in once
    twice = run_all.note_spliced(once, {"compose": "1a2b3c4", "retrieval": "5d6e7f8"})
    assert "(every other section; spliced later: retrieval at 5d6e7f8, compose at 1a2b3c4)" in twice
    assert twice.endswith("* Machine: AMD EPYC") and twice.count("* Commit:") == 1
    assembled = "* Commit: abc1234 (reused sections name their own)"
    assert run_all.note_spliced(assembled, {"retrieval": "bec4568"}) == assembled
    assert run_all.note_spliced(HEAD, {}) == HEAD
