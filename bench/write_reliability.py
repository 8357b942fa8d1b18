"""Write RELIABILITY.md from the scenario tests themselves: run them, collect their figures, fill the page.

The scenario tests record what they sent and observed (`tests.reliability_record.figures`) and pytest
counts each file's passed cases; this script runs them with `--reliability-out` (the load scenarios
`--load-runs` times, since their timings and counts vary), and fills every `{{key}}` of
bench/reliability_template.md with the figure of that key (a range "min–max" where runs differ). A key no
test recorded, or a failed scenario, stops it: the page is never written from stale numbers.

    make reliability            # = .venv/bin/python bench/write_reliability.py (PostgreSQL as make test)
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from common import REPO, machine_info, now_utc

logger = logging.getLogger("write_reliability")
TEMPLATE = REPO / "bench" / "reliability_template.md"
PLACEHOLDER = re.compile(r"\{\{([^}]+)\}\}")
SCENARIOS = (
    "tests/slack/test_slack_flows.py",
    "tests/slack/test_two_processes.py",
    "tests/slack/test_slack_postgres.py",
    "tests/slack/test_socket_mode.py",
    "tests/slack/test_slack_reservations.py",
    "tests/scheduling/test_fair_use.py",
    "tests/slack/test_slack_faults.py",
    "tests/storage/test_storage_busy.py",
    "tests/slack/test_interrupted.py",
    "tests/scheduling/test_drain.py",
    "tests/slack/test_slack_robustness.py",
    "tests/slack/test_request_guard.py",
    "tests/slack/test_slack_fixtures.py",
    "tests/entry/test_lambda_handler.py",
    "tests/engine/test_options.py",
    "tests/slack/test_properties.py",
    "tests/slack/test_secrets.py",
    "tests/slack/test_tenancy.py",
    "tests/engine/test_policy.py",
    "tests/writing/test_prompt_template.py",
    "tests/writing/test_chat_bedrock.py",
    "tests/retrieval/test_safety_retrieval.py",
    "tests/deploy/test_iam_policy.py",
)
LOAD = ("tests/slack/test_slack_load.py",)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=REPO / "RELIABILITY.md", help="page to write")
    parser.add_argument("--load-runs", type=int, default=3, help="runs of the load scenarios (default 3)")
    parser.add_argument(
        "--figures", type=Path, help="render from these merged figures (JSON) without running"
    )
    return parser.parse_args(argv)


def run_tests(files: tuple[str, ...], out: Path) -> dict[str, Any]:
    """One pytest run of `files` (through .ci/with-postgres) and the figures it recorded."""
    command = [
        str(REPO / ".ci" / "with-postgres"),
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--reliability-out={out}",
        *files,
    ]
    logger.info("running %s", " ".join(files))
    done = subprocess.run(command, cwd=REPO, check=False)
    if done.returncode != 0:
        raise SystemExit(f"a scenario failed (pytest exit {done.returncode}): RELIABILITY.md is not written")
    return dict(json.loads(out.read_text(encoding="utf-8")))


def merge(runs: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Every key's values over the runs that recorded it."""
    merged: dict[str, list[Any]] = defaultdict(list)
    for figures in runs:
        for key, value in figures.items():
            merged[key].append(value)
    return dict(merged)


def shown(values: list[Any]) -> str:
    """One figure as the page shows it: the value, or min–max when runs differ."""
    if all(value == values[0] for value in values):
        return _fmt(values[0])
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return f"{_fmt(min(values))}–{_fmt(max(values))}"
    return " / ".join(dict.fromkeys(_fmt(v) for v in values))


def _fmt(value: Any) -> str:
    """Numbers with thousands separators; floats as recorded."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render(template: str, figures: dict[str, list[Any]], header: str) -> str:
    """The page: the template with every placeholder filled; SystemExit naming keys nobody recorded."""
    missing = sorted({key.strip() for key in PLACEHOLDER.findall(template)} - set(figures))
    if missing:
        raise SystemExit("no scenario recorded: " + ", ".join(missing))
    body = PLACEHOLDER.sub(lambda m: shown(figures[m.group(1).strip()]), template)
    return body.replace("<!-- header -->", header)


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios (or read given figures) and write the page."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if args.figures:
        merged = {
            k: v if isinstance(v, list) else [v] for k, v in json.loads(args.figures.read_text()).items()
        }
    else:
        with tempfile.TemporaryDirectory() as scratch:
            runs = [run_tests(SCENARIOS, Path(scratch) / "scenarios.json")]
            for n in range(max(1, args.load_runs)):
                runs.append(run_tests(LOAD, Path(scratch) / f"load-{n}.json"))
        merged = merge(runs)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout.strip()
    machine = machine_info()
    header = (
        f"Written by `bench/write_reliability.py` on {now_utc()} at commit `{commit or 'unknown'}`; "
        f"machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores. The load scenarios ran "
        f"{args.load_runs} times (a range shows their spread)."
    )
    args.out.write_text(render(TEMPLATE.read_text(encoding="utf-8"), merged, header), encoding="utf-8")
    logger.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
