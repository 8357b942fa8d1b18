"""Helpers shared by the benchmarks: paths, machine description, memory, percentiles, caches, tables.

Nothing here is imported by the product; the benchmarks never run in the test suite.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import logging
import os
import platform
import resource
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
OUT_DIR = BENCH_DIR / "out"  # gitignored
LIBRARY_FILE = "sd_prompts_real_users.parquet"
PACKAGES = ("onnxruntime", "qdrant-client", "qdrant-edge-py", "numpy", "tokenizers", "pyarrow")

# The cache bench_ingest.py writes: every kept (indexed) prompt, its id, payload and MiniLM vector.
CACHE_VECTORS = "library_vectors.npy"
CACHE_META = "library_meta.jsonl"
LIBRARY_INDEX = "edge_library"  # bench_ingest's data dir under the out dir (index in index/prompts)

FloatArray = npt.NDArray[np.float32]

logger = logging.getLogger("bench")

if str(REPO) not in sys.path:  # the project is installed editable, but keep `python bench/x.py` robust
    sys.path.insert(0, str(REPO))


# ------------------------------------------------------------------------------------------ paths / CLI


def default_shared_data() -> Path:
    """IMAGINE_SHARED_DATA, else the `shared/data` directory next to the repository."""
    env = os.environ.get("IMAGINE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "data"


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--shared-data, --out-dir, --markdown-out, --json-out and -v, used by every bench."""
    parser.add_argument(
        "--shared-data",
        type=Path,
        default=default_shared_data(),
        help="directory of sd_prompts_real_users.parquet (env IMAGINE_SHARED_DATA; default ../shared/data)",
    )
    parser.add_argument(
        "--out-dir", type=Path, default=OUT_DIR, help="cache and scratch directory (bench/out, gitignored)"
    )
    parser.add_argument("--markdown-out", type=Path, default=None, help="also write the report to this file")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the raw numbers as JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def library_path(shared_data: Path) -> Path:
    """The main prompt library inside the shared data directory (read in place, never copied)."""
    path = Path(shared_data) / LIBRARY_FILE
    if not path.is_file():
        raise SystemExit(f"library not found: {path} (use --shared-data or IMAGINE_SHARED_DATA)")
    return path


def setup_logging(verbose: bool = False) -> None:
    """Timestamped logging to stderr (stdout is kept for the final report)."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(name)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def repo_relative(arg: str) -> str:
    """A command-line argument as a report shows it: an absolute path relative to the repository
    (`../shared/data` for one beside it), anything else as given."""
    return os.path.relpath(arg, REPO) if arg.startswith("/") else arg


def command_line() -> str:
    """The command that is running, relative to the repository when possible (for the report)."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO))
    except ValueError:
        shown = str(script)
    return shlex.join([".venv/bin/python", shown, *map(repo_relative, sys.argv[1:])])


def now_utc() -> str:
    """The current time as an ISO string (UTC, seconds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


# ------------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_ram_gib() -> float:
    """Physical memory in GiB."""
    try:
        for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3


def package_version(name: str) -> str:
    """Installed version of a distribution, or 'not installed'."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, Any]:
    """CPU, cores, RAM, OS, Python and the versions of the packages that matter here."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": round(total_ram_gib(), 1),
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def machine_markdown(info: dict[str, Any] | None = None) -> str:
    """One line describing the machine, for report headers."""
    info = info or machine_info()
    packages = ", ".join(f"{name} {version}" for name, version in info["packages"].items())
    return (
        f"{info['cpu']}, {info['cores']} cores ({info['usable_cores']} usable), {info['ram_gib']} GiB RAM, "
        f"{info['os']}, Python {info['python']}; {packages}; load average at the end "
        f"{' / '.join(str(x) for x in info.get('load_average', []))} (1/5/15 min)"
    )


# ------------------------------------------------------------------------------------------ memory / time


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident set size of this process in MB (VmRSS)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


class Timer:
    """`with Timer() as t: ...` then `t.seconds`."""

    def __init__(self) -> None:
        self.started = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU time of the whole machine from /proc/stat, in seconds."""
    fields = Path("/proc/stat").read_text(encoding="utf-8").splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    idle = values[3] + values[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / tick, sum(values) / tick


@dataclass
class CpuShare:
    """What the CPUs did during a measured section: our process vs everything else."""

    wall_s: float
    own_cpu_s: float
    others_cpu_s: float

    @property
    def others_cores(self) -> float:
        """Average number of cores busy with other processes during the section."""
        return self.others_cpu_s / self.wall_s if self.wall_s > 0 else 0.0

    def describe(self) -> str:
        """One line for a report."""
        return (
            f"this process used {self.own_cpu_s:,.0f} CPU-s in {self.wall_s:,.0f} s wall; other processes "
            f"used {self.others_cpu_s:,.0f} CPU-s (≈ {self.others_cores:.2f} cores on average)"
        )


class CpuMonitor:
    """`with CpuMonitor() as m: ...` then `m.share`: measures CPU contention by other processes."""

    def __init__(self) -> None:
        self.share = CpuShare(0.0, 0.0, 0.0)
        self._start = (0.0, 0.0, 0.0)

    def __enter__(self) -> CpuMonitor:
        self._start = (time.perf_counter(), time.process_time(), machine_busy_seconds()[0])
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._start[0]
        own = time.process_time() - self._start[1]
        busy = machine_busy_seconds()[0] - self._start[2]
        self.share = CpuShare(wall, own, max(0.0, busy - own))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100, linear interpolation); NaN for no values."""
    if not values:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def latency_summary(ms: Sequence[float]) -> dict[str, float]:
    """p50 / p95 / mean / max of latencies in ms, and how many there were."""
    return {
        "n": float(len(ms)),
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "mean_ms": float(np.mean(ms)) if ms else float("nan"),
        "max_ms": float(np.max(ms)) if ms else float("nan"),
    }


def disk_usage_mb(path: Path) -> tuple[float, float]:
    """(apparent size, allocated size) of every file under `path`, in MB."""
    apparent = allocated = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            apparent += stat.st_size
            allocated += stat.st_blocks * 512
    return apparent / 1e6, allocated / 1e6


def fresh_dir(path: Path, root: Path) -> Path:
    """Delete `path`, which must lie inside `root` (the out dir), and recreate it empty."""
    if not path.resolve().is_relative_to(root.resolve()) or path.resolve() == root.resolve():
        raise ValueError(f"refusing to delete {path}: it is not inside {root}")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


# ------------------------------------------------------------------------------------------ formatting


def fmt(value: object, digits: int = 1) -> str:
    """A number for a table: fixed decimals, thousands separators, '–' for missing."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "–"
        return f"{value:,.{digits}f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], digits: int = 1) -> str:
    """A GitHub markdown table; cells that are not strings go through `fmt`."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        cells = [cell if isinstance(cell, str) else fmt(cell, digits) for cell in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def git_commit() -> str:
    """The repository's HEAD commit (short), noting uncommitted changes; 'unknown' outside git."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def report_header(title: str, info: dict[str, Any] | None = None) -> str:
    """Markdown header of a bench report: title, exact command, date, commit and machine."""
    return (
        f"## {title}\n\n"
        f"* Command: `{command_line()}`\n"
        f"* Date: {now_utc()}\n"
        f"* Commit: {git_commit()}\n"
        f"* Machine: {machine_markdown(info)}\n\n"
    )


def write_outputs(markdown: str, result: dict[str, Any], args: argparse.Namespace) -> None:
    """Write the report to stdout, and to --markdown-out / --json-out when given."""
    sys.stdout.write(markdown)
    if args.markdown_out is not None:
        args.markdown_out.parent.mkdir(parents=True, exist_ok=True)
        args.markdown_out.write_text(markdown, encoding="utf-8")
        logger.info("wrote %s", args.markdown_out)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        logger.info("wrote %s", args.json_out)


def run_report(
    argv: list[str] | None,
    parse_args: Callable[[list[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace], dict[str, Any]],
    render: Callable[[dict[str, Any]], str],
) -> int:
    """A bench's main: parse its options, run it and write its report (stdout, --markdown-out, --json-out)."""
    args = parse_args(argv)
    setup_logging(args.verbose)
    result = run(args)
    write_outputs(render(result), result, args)
    return 0


# ------------------------------------------------------------------------------------------ library cache


@dataclass
class LibraryCache:
    """Every prompt the ingest kept: ids, texts, payloads (incl. source, safe) and MiniLM vectors."""

    ids: list[str]
    prompts: list[str]
    payloads: list[dict[str, Any]]
    vectors: FloatArray

    def __len__(self) -> int:
        return len(self.ids)


def save_library_cache(out_dir: Path, cache: LibraryCache) -> None:
    """Write the cache as `library_vectors.npy` + `library_meta.jsonl` (one JSON object per prompt)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if not (len(cache.ids) == len(cache.prompts) == len(cache.payloads) == len(cache.vectors)):
        raise ValueError("library cache columns differ in length")
    np.save(out_dir / CACHE_VECTORS, np.ascontiguousarray(cache.vectors, dtype=np.float32))
    tmp = out_dir / f".{CACHE_META}.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        for point, prompt, payload in zip(cache.ids, cache.prompts, cache.payloads, strict=True):
            handle.write(json.dumps({"id": point, "prompt": prompt, "payload": payload}, default=str) + "\n")
    tmp.replace(out_dir / CACHE_META)
    logger.info("cached %d prompts and vectors in %s", len(cache.ids), out_dir)


def load_library_cache(out_dir: Path) -> LibraryCache:
    """Read the cache written by bench_ingest.py (SystemExit with the command to run when missing)."""
    vectors_path, meta_path = out_dir / CACHE_VECTORS, out_dir / CACHE_META
    if not vectors_path.is_file() or not meta_path.is_file():
        raise SystemExit(
            f"no library cache in {out_dir}: run `.venv/bin/python bench/bench_ingest.py "
            f"--out-dir {out_dir}` first"
        )
    ids: list[str] = []
    prompts: list[str] = []
    payloads: list[dict[str, Any]] = []
    with meta_path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            ids.append(record["id"])
            prompts.append(record["prompt"])
            payloads.append(record["payload"])
    vectors = np.load(vectors_path)
    if len(vectors) != len(ids):
        raise SystemExit(f"library cache in {out_dir} is inconsistent: re-run bench/bench_ingest.py")
    return LibraryCache(ids, prompts, payloads, vectors.astype(np.float32, copy=False))


def library_index_dir(out_dir: Path) -> Path:
    """Where bench_ingest.py builds the Edge index of the whole library (same layout as the product)."""
    return out_dir / LIBRARY_INDEX / "index" / "prompts"


def read_library_prompts(path: Path) -> list[str]:
    """The raw `prompt` column of a parquet library (for query generation)."""
    import pyarrow.parquet as pq

    return [str(p) for p in pq.read_table(path, columns=["prompt"]).column("prompt").to_pylist() if p]
