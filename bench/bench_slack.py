"""Slack app latency and memory: slash-command ack at 1/10/50 concurrent commands, time to the first visible
answer (hits in the thread) and to the image upload, offline models and the Bedrock stand-in, at 79k and 1M.

The real Bolt app is served over HTTP on 127.0.0.1 by `make_http_server` (waitress) and driven by
`sandbox.slack_driver.SlackDriver` against `sandbox.slack_api.FakeSlackApi`, as tests/slack/slack_rig.py does.
The Bedrock stand-in is the test suite's `FakeBedrockRuntime` (tests/fakes) with its Converse (Claude) and
image (SD3.5) handlers: real botocore and langchain-aws clients, loopback HTTP, no model latency.

Each index size runs in its own worker process, so its peak RSS (VmHWM) is that of one serving process
(app + retriever + index; the sandbox Slack/Bedrock servers and the driver share it). The 1M index is the
synthetic one of bench_search.py (real vectors + noise) in the default (compact) memory layout, built once
and cached under the out dir by synthetic_index.py.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from common import (
    BENCH_DIR,
    REPO,
    Timer,
    add_common_args,
    fmt,
    fresh_dir,
    library_index_dir,
    markdown_table,
    percentile,
    report_header,
    setup_logging,
    write_outputs,
)
from synthetic_index import ensure_synthetic_index

from retrieval.adapters.edge_index import IndexLayout

logger = logging.getLogger("bench_slack")

LEVELS = (1, 10, 50)
CHAT = "us.anthropic.claude-haiku-4-5-20251001-v1:0"
IMAGE = "stability.sd3-5-large-v1:0"
SECRET = "bench-signing-secret"
POLL_S = 0.005


def vm_status(field: str) -> float:
    """A /proc/self/status memory field (VmHWM, VmRSS) in MB."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def spread(ms: list[float]) -> dict[str, float]:
    """n, median, p99, min, max and interquartile range of latencies in ms."""
    return {
        "n": float(len(ms)),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "min_ms": min(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
        "iqr_ms": percentile(ms, 75) - percentile(ms, 25),
    }


# ------------------------------------------------------------------------------------------ index


# ------------------------------------------------------------------------------------------ serving


@dataclass
class Served:
    """The app on a local port, its driver and services."""

    driver: Any
    services: Any


@contextmanager
def serve(fake: Any, retriever: Any, folder: Path, models: str, bedrock_url: str | None) -> Iterator[Served]:
    """The real Bolt app over HTTP (as tests/slack_rig.serve), with offline or Bedrock stand-in models."""
    from pydantic import SecretStr

    from bot.drawing.offline_images import OfflinePreviewImageModel
    from bot.engine.contact_sheet import contact_sheet
    from bot.engine.conversation import Conversation
    from bot.engine.policy import Denylist, PromptPolicy
    from bot.scheduling.fair_use import FairUseLimits
    from bot.slack.app import build_app
    from bot.slack.credentials import SlackCredentials
    from bot.slack.intake.http_server import make_http_server, serving_in_background
    from bot.wiring import assemble_services
    from bot.writing.offline_composer import OfflineComposer
    from retrieval.safety import SafetyClassifier
    from sandbox.slack_driver import SlackDriver
    from storage.db import create_db_engine, migrate, session_factory
    from storage.thread_store import SqlThreadStore

    folder.mkdir(parents=True, exist_ok=True)
    engine = create_db_engine(f"sqlite:///{folder / 'imagine.db'}")
    migrate(engine)
    store = SqlThreadStore(session_factory(engine))
    if models == "bedrock":
        from bot.drawing.bedrock_images import BedrockImageModel
        from bot.writing.claude import BedrockChatModel

        composer: Any = BedrockChatModel(CHAT, region="us-east-1", endpoint_url=bedrock_url)
        images: Any = BedrockImageModel(IMAGE, region="us-east-1", endpoint_url=bedrock_url)
    else:
        composer, images = OfflineComposer(None), OfflinePreviewImageModel()
    conversation = Conversation(
        retriever,
        composer,
        images,
        store,
        folder / "images",
        contact_sheet=contact_sheet,
        policy=PromptPolicy(Denylist.parse("", "bench"), SafetyClassifier()),
    )
    services = assemble_services(conversation, store, FairUseLimits(), logging.getLogger("bench.slack_app"))
    credentials = SlackCredentials(
        bot_token=SecretStr(fake.bot_token()), signing_secret=SecretStr(SECRET), api_url=fake.api_url
    )
    server = make_http_server(build_app(credentials, services, engine=engine), signing_secret=SECRET)
    try:
        with serving_in_background(server):
            yield Served(SlackDriver(f"http://127.0.0.1:{server.port}", SECRET, fake), services)
    finally:
        if services.jobs is not None:
            services.jobs.close()
        engine.dispose()


def wait_until(probe: Callable[[], Any], timeout: float) -> tuple[Any, float]:
    """Poll `probe` every few ms until truthy; (its value, monotonic time it became truthy)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        now = time.monotonic()
        if value or now > deadline:
            if not value:
                raise TimeoutError("timed out waiting")
            return value, now
        time.sleep(POLL_S)


def idle(served: Served, timeout: float = 600.0) -> float:
    """Wait until no job runs or waits; seconds waited."""
    started = time.monotonic()
    fair = served.services.fair_use
    wait_until(lambda: fair.running == 0 and fair.waiting == 0, timeout)
    return time.monotonic() - started


def ack_levels(fake: Any, served: Served, levels: list[int], samples: int) -> dict[str, Any]:
    """Ack latency of `level` simultaneous /imagine commands from distinct users (≈ `samples` per level)."""
    from bot.slack.ids import COMMAND_IMAGINE
    from sandbox.slack_models import GENERAL

    users = [f"U0BENCH{n:03d}" for n in range(max(levels))]
    for user in users:
        fake.add_user(user, user.lower())
        fake.set_member(GENERAL, user)
    out: dict[str, Any] = {}
    for level in levels:
        bursts = max(1, samples // level)
        acks: list[float] = []
        statuses: list[int] = []
        drain: list[float] = []
        for burst in range(bursts):
            gate = threading.Barrier(level)

            def send(n: int, burst: int = burst, gate: threading.Barrier = gate) -> tuple[int, float]:
                gate.wait()
                started = time.perf_counter()
                status, _ = served.driver.slash_command(
                    COMMAND_IMAGINE, f"a lighthouse at dusk {burst}-{n}", users[n], GENERAL
                )
                return status, (time.perf_counter() - started) * 1000

            with ThreadPoolExecutor(max_workers=level) as pool:
                for status, ms in pool.map(send, range(level)):
                    statuses.append(status)
                    acks.append(ms)
            drain.append(idle(served))
        out[str(level)] = {
            **spread(acks),
            "bursts": bursts,
            "ok": sum(1 for s in statuses if s == 200),
            "drain_s_mean": sum(drain) / len(drain),
        }
        logger.info("ack at %d concurrent: p50 %.1f ms p99 %.1f ms", level, *_p(out[str(level)]))
    return out


def _p(row: dict[str, float]) -> tuple[float, float]:
    return row["p50_ms"], row["p99_ms"]


def first_answers(fake: Any, served: Served, ideas: list[str]) -> dict[str, Any]:
    """Sequential /imagine commands: ms to the ack, to the hits in the thread and to the image upload."""
    from bot.slack.ids import COMMAND_IMAGINE
    from sandbox.slack_models import ALICE, GENERAL

    def thread_blocks(root_ts: str) -> list[str]:
        return [
            str(block.get("block_id", ""))
            for m in fake.messages(GENERAL, root_ts)
            for block in m.get("blocks") or []
        ]

    def new_roots(before: set[str]) -> list[dict[str, Any]]:
        return [
            m for m in fake.messages(GENERAL) if m["ts"] not in before and "imagined" in m.get("text", "")
        ]

    def has_hits(root_ts: str) -> bool:
        return "hit_1" in thread_blocks(root_ts)

    def uploaded_more_than(n: int) -> bool:
        return len(fake.uploads()) > n

    runs: list[dict[str, float]] = []
    for idea in ideas:
        before = {m["ts"] for m in fake.messages(GENERAL)}
        uploads_before = len(fake.uploads())
        started = time.monotonic()
        status, _ = served.driver.slash_command(COMMAND_IMAGINE, idea, ALICE, GENERAL)
        acked = time.monotonic()
        if status != 200:
            raise RuntimeError(f"/imagine answered {status}")
        roots, _ = wait_until(partial(new_roots, before), 120)
        root_ts = str(roots[-1]["ts"])
        _, hits_at = wait_until(partial(has_hits, root_ts), 120)
        _, upload_at = wait_until(partial(uploaded_more_than, uploads_before), 120)
        runs.append(
            {
                "ack_ms": (acked - started) * 1000,
                "hits_ms": (hits_at - started) * 1000,
                "upload_ms": (upload_at - started) * 1000,
            }
        )
        idle(served)
    first, warm = runs[0], runs[1:] or runs
    return {
        "cold": first,
        "warm": {key: spread([r[key] for r in warm]) for key in ("ack_ms", "hits_ms", "upload_ms")},
        "runs": runs,
    }


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """One index size in this process: acks, then first answers with each model set; memory along the way."""
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_CONFIG_FILE": str(Path(config["scratch"]) / "none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(Path(config["scratch"]) / "none"),
        }
    )
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever
    from sandbox.bedrock_converse import install_converse_handlers
    from sandbox.bedrock_image_models import install_image_handlers
    from sandbox.bedrock_runtime import FakeBedrockRuntime
    from sandbox.slack_api import FakeSlackApi

    memory: dict[str, float] = {"start_rss_mb": vm_status("VmRSS")}
    scratch = Path(config["scratch"])
    result: dict[str, Any] = {"size": config["size"], "label": config["label"], "models": {}}
    with Timer() as opening:
        retriever = Retriever(
            OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(Path(config["index"]))
        )
        retriever.open()
        retriever.embed_query("warm up the embedder")
    result["open_s"] = opening.seconds
    memory["after_open_rss_mb"] = vm_status("VmRSS")
    try:
        with FakeSlackApi() as fake, FakeBedrockRuntime() as bedrock:
            install_image_handlers(bedrock)
            install_converse_handlers(bedrock)
            for models in config["models"]:
                with serve(fake, retriever, scratch / models, models, bedrock.url) as served:
                    if config["answers"]:  # before the ack bursts, so every model set starts alike
                        result["models"][models] = first_answers(fake, served, config["ideas"])
                        memory[f"after_{models}_rss_mb"] = vm_status("VmRSS")
                    if config["ack_samples"] and models == config["models"][0]:
                        result["acks"] = ack_levels(fake, served, config["levels"], config["ack_samples"])
                        memory["after_acks_rss_mb"] = vm_status("VmRSS")
    finally:
        retriever.close()
    import resource

    memory["vmhwm_mb"] = vm_status("VmHWM")
    memory["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    memory["peak_rss_mb"] = max(v for v in memory.values() if v == v)
    result["memory"] = memory
    return result


# ------------------------------------------------------------------------------------------ driver


def run_size(
    label: str, size: int, index: Path, args: argparse.Namespace, ideas: list[str]
) -> dict[str, Any]:
    """Run the worker for one index in a fresh process (so VmHWM is that size's serving process)."""
    scratch = fresh_dir(args.out_dir / f"slack_scratch_{size}", args.out_dir)
    config = {
        "label": label,
        "size": size,
        "index": str(index),
        "scratch": str(scratch),
        "levels": args.levels,
        "ack_samples": args.ack_samples,
        "answers": args.answers,
        "ideas": ideas,
        "models": args.models,
    }
    config_file = scratch / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    result_file = scratch / "result.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", str(config_file)]
    with Timer() as wall:
        done = subprocess.run(command, cwd=REPO, check=False)
    if done.returncode != 0 or not result_file.is_file():
        return {"label": label, "size": size, "error": f"worker exit status {done.returncode}"}
    loaded: dict[str, Any] = json.loads(result_file.read_text(encoding="utf-8"))
    loaded["process_wall_s"] = wall.seconds
    return loaded


def load_ideas(count: int) -> list[str]:
    """The first `count` labelled ideas (bench/labelled_ideas.json), repeated when needed."""
    ideas = [i["idea"] for i in json.loads((BENCH_DIR / "labelled_ideas.json").read_text())["ideas"]]
    return [ideas[n % len(ideas)] for n in range(count)]


def parse_sizes(text: str, library: int) -> list[tuple[str, int]]:
    """'library,1000000' -> [('library', n), ('1000000', 1000000)]."""
    out: list[tuple[str, int]] = []
    for part in text.split(","):
        part = part.strip()
        if part:
            out.append((part, library) if part == "library" else (part, int(part)))
    return out


def render(results: list[dict[str, Any]], builds: dict[int, dict[str, Any]], args: argparse.Namespace) -> str:
    """The markdown section."""
    md = report_header("Slack app: ack latency, time to first answer and upload, peak RSS")
    md += (
        "Real Bolt app served by `bot.slack.intake.http_server.make_http_server` (waitress) on "
        "127.0.0.1, driven by `SlackDriver` against `FakeSlackApi` (signed HTTP requests, the app's Web "
        "API calls answered by the sandbox); SQLite thread store; default fair-use limits (2 concurrent "
        "jobs). **Bedrock stand-in** = `sandbox/bedrock_runtime.FakeBedrockRuntime` + "
        "`install_converse_handlers` + `install_image_handlers`: real botocore/langchain-aws clients "
        f"for `{CHAT}` and `{IMAGE}` over loopback HTTP, answering instantly, so those rows measure our "
        "pipeline and the SDK overhead, **not** Bedrock's model latency (seconds in production). "
        "Offline = `OfflineComposer` + `OfflinePreviewImageModel`.\n\n"
    )
    ok = [r for r in results if "error" not in r]
    for r in results:
        if "error" in r:
            md += f"* {r['label']} ({r['size']:,} prompts): **failed** ({r['error']}).\n"
    if any("acks" in r for r in ok):
        md += (
            "### Slash-command ack latency\n\nTime from sending a signed `/imagine` to its HTTP 200, "
            "`level` commands released together by a barrier from distinct users; the queue drains before "
            "the next burst. Offline models, same app instance, after its first-answer runs.\n\n"
        )
        rows: list[tuple[object, ...]] = []
        for r in ok:
            for level, a in r.get("acks", {}).items():
                rows.append(
                    (
                        f"{r['size']:,}",
                        int(level),
                        int(a["n"]),
                        f"{int(a['ok'])}/{int(a['n'])}",
                        a["p50_ms"],
                        a["p99_ms"],
                        a["min_ms"],
                        a["max_ms"],
                        a["iqr_ms"],
                        a["drain_s_mean"],
                    )
                )
        md += markdown_table(
            (
                "prompts",
                "concurrent",
                "samples",
                "HTTP 200",
                "p50 ms",
                "p99 ms",
                "min ms",
                "max ms",
                "IQR ms",
                "queue drain s / burst",
            ),
            rows,
        )
        md += "\nSlack requires the ack within 3,000 ms.\n\n"
    md += (
        "### Time to first visible answer and to the image upload\n\n"
        "Sequential `/imagine <idea>` (labelled ideas), clock started before the HTTP request; *hits* = the "
        "message with the retrieved library prompts is in the thread (FakeSlackApi), *upload* = the image "
        "file upload completed. First run of each model set (cold: first query/compose/image in the "
        "serving process) shown separately; warm = the rest.\n\n"
    )
    rows = []
    for r in ok:
        for models, m in r["models"].items():
            w = m["warm"]
            rows.append(
                (
                    f"{r['size']:,}",
                    models,
                    int(w["hits_ms"]["n"]),
                    w["ack_ms"]["p50_ms"],
                    w["hits_ms"]["p50_ms"],
                    f"{fmt(w['hits_ms']['min_ms'])}–{fmt(w['hits_ms']['max_ms'])}",
                    w["upload_ms"]["p50_ms"],
                    f"{fmt(w['upload_ms']['min_ms'])}–{fmt(w['upload_ms']['max_ms'])}",
                    m["cold"]["hits_ms"],
                    m["cold"]["upload_ms"],
                )
            )
    md += markdown_table(
        (
            "prompts",
            "models",
            "warm runs",
            "ack p50 ms",
            "hits p50 ms",
            "hits min–max",
            "upload p50 ms",
            "upload min–max",
            "cold hits ms",
            "cold upload ms",
        ),
        rows,
    )
    md += "\n### Memory of the serving process\n\n"
    rows = []
    for r in ok:
        mem = r["memory"]
        build = builds.get(r["size"])
        rows.append(
            (
                f"{r['size']:,}",
                r["open_s"],
                mem.get("after_open_rss_mb"),
                max(v for k, v in mem.items() if k.startswith("after_")),
                mem["peak_rss_mb"],
                (f"{build['build_s']:.0f} s" + (" (cached)" if build.get("reused") else ""))
                if build
                else "–",
            )
        )
    md += markdown_table(
        (
            "prompts",
            "open + warm-up s",
            "RSS after open MB",
            "RSS after runs MB",
            "peak RSS MB (max of VmHWM, ru_maxrss, samples)",
            "synthetic index build",
        ),
        rows,
        digits=1,
    )
    md += (
        "\nOne worker process per size (`--worker`), so VmHWM is that size's serving process; it includes "
        "the sandbox Slack and Bedrock servers and the driver threads, which run in the same process. "
        "The 1M index is bench_search.py's synthetic dataset (all real prompts + real vectors with noise "
        "and recombined phrases) in the default compact memory layout (int8 vectors in RAM, originals on "
        "disk), cached in `synthetic_compact_<size>` under the out dir by bench/synthetic_index.py.\n"
    )
    missing = [s for s in args.wanted_sizes if s not in {r["size"] for r in ok}]
    if missing:
        md += f"\nNot measured: sizes {', '.join(f'{s:,}' for s in missing)} ({args.skip_note}).\n"
    return md


def main(argv: list[str] | None = None) -> int:
    """Run the workers and write the section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    add_common_args(parser)
    parser.add_argument("--sizes", default="library,1000000", help="'library' and/or synthetic sizes")
    parser.add_argument("--levels", default="1,10,50", help="concurrent commands per burst")
    parser.add_argument("--ack-samples", type=int, default=50, help="≈ acks per level (0: skip acks)")
    parser.add_argument("--answers", type=int, default=11, help="sequential /imagine runs per model set")
    parser.add_argument("--models", default="offline,bedrock", help="model sets: offline, bedrock")
    parser.add_argument(
        "--ack-sizes", default="all", help="sizes at which acks are measured ('all' or a --sizes subset)"
    )
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if args.worker is not None:
        config = json.loads(args.worker.read_text(encoding="utf-8"))
        result = worker(config)
        (args.worker.parent / "result.json").write_text(json.dumps(result, default=str), encoding="utf-8")
        return 0
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    library = library_index_dir(args.out_dir)
    if not library.exists():
        raise SystemExit(f"no library index at {library}: run bench/bench_ingest.py first")
    from bench_search import build_dataset  # noqa: F401  (fails early when bench_search is broken)
    from common import load_library_cache

    n_library = len(load_library_cache(args.out_dir).ids)
    sizes = parse_sizes(args.sizes, n_library)
    ack_sizes = (
        {s for _, s in sizes}
        if args.ack_sizes == "all"
        else {s for _, s in parse_sizes(args.ack_sizes, n_library)}
    )
    args.wanted_sizes = [s for _, s in sizes]
    args.skip_note = "see the log"
    ideas = load_ideas(args.answers)
    results: list[dict[str, Any]] = []
    builds: dict[int, dict[str, Any]] = {}
    for label, size in sizes:
        if size == n_library:
            index = library
        else:
            logger.info("synthetic index of %d prompts", size)
            index_dir, builds[size] = ensure_synthetic_index(args.out_dir, size, IndexLayout.COMPACT)
            index = index_dir / "index"
        samples = args.ack_samples if size in ack_sizes else 0
        sub = argparse.Namespace(**{**vars(args), "ack_samples": samples})
        results.append(run_size(label, size, index, sub, ideas))
        logger.info("size %d done", size)
    write_outputs(render(results, builds, args), {"runs": results, "builds": builds}, args)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
