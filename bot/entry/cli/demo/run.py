"""`imagine-bot demo`: a scripted Slack conversation through the real app, offline, as a transcript."""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import EDIT_MODELS, Config
from bot.entry.cli.demo.script import IDEA, BeforeStep, DemoError, Script

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.slack.services import Services
    from sandbox.slack_api import FakeSlackApi
    from sandbox.slack_driver import SlackDriver

logger = logging.getLogger(__name__)
__all__ = ["DemoError", "add_demo_command", "run_demo"]

DEFAULT_OUT = Path("demo-output")
DEFAULT_TIMEOUT = 60.0
SECRET = "imagine-demo-signing-secret"


def _seconds(value: str) -> float:
    """argparse type: a positive number of seconds."""
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None
    if not number > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, got {value}")
    return number


def add_demo_command(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `demo` on the CLI's subparsers."""
    demo = commands.add_parser(
        "demo",
        help="play a scripted Slack conversation through the real app, offline, and print the transcript",
        description="Start a sandbox Slack workspace and the real Slack app (HTTP mode) on 127.0.0.1, then "
        f"play a conversation in #general: /imagine {IDEA}, a refinement reply that keeps the seed, "
        "Use #2, Re-roll, Upscale, a sketch posted into the thread and used as a sketch, and an avatar "
        "brainstorm with votes and a winner that ends as a transparent icon. Prints what people would see "
        "in the channel and writes the images and transcript.txt to --out. Fully offline: it always uses "
        "the prompt index under IMAGINE_DATA_DIR (run `imagine-bot ingest PATH` or `make demo` first) and "
        "the offline composer, preview images and image edits, whatever IMAGINE_CHAT_MODEL / "
        "IMAGINE_IMAGE_MODEL / IMAGINE_QDRANT_URL say. Exits 1 naming the step when one fails.",
        epilog=epilog,
    )
    demo.add_argument("--idea", default=IDEA, help=f"what alice asks /imagine for (default {IDEA!r})")
    demo.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help="images and transcript.txt (default ./demo-output)",
    )
    demo.add_argument(
        "--timeout", type=_seconds, default=DEFAULT_TIMEOUT, metavar="S", help="seconds per step (default 60)"
    )


def run_demo(args: argparse.Namespace, config: Config, before_step: BeforeStep | None = None) -> int:
    """Play the script, print the transcript, write images; DemoError names the step that failed."""
    from rich.console import Console

    from sandbox.slack_api import FakeSlackApi

    out: Path = args.out
    offline = demo_config(config)
    check_index(offline)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DemoError(f"cannot create {out}: {exc.strerror or exc}") from None
    started = time.monotonic()
    with ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="imagine-demo-")))
        services, engine = build_demo_services(offline, scratch, stack)
        fake = stack.enter_context(FakeSlackApi())
        driver = serve_app(fake, services, engine, stack)
        idea = " ".join(str(args.idea).split()) or IDEA
        script = Script(fake, driver, services, out, args.timeout, idea, before_step)
        failure: DemoError | None = None
        with Console(stderr=True).status("starting") as status:
            try:
                script.play(lambda text: status.update(text))
            except DemoError as exc:
                failure = exc
        transcript = script.transcript(time.monotonic() - started)
    _write_stdout(transcript)
    try:
        (out / "transcript.txt").write_text(transcript, encoding="utf-8")
    except OSError as exc:
        raise DemoError(f"cannot write {out / 'transcript.txt'}: {exc.strerror or exc}") from None
    if failure is not None:
        raise failure
    return 0


def demo_config(config: Config) -> Config:
    """The config with the embedded defaults forced: local embedder, Edge index, offline models."""
    default_embed = Config.model_fields["embed_model"].default
    update = {
        "chat_model": "offline",
        "image_model": "offline",
        "qdrant_url": None,
        "embed_model": default_embed,
        **{field: "offline" for field, _ in EDIT_MODELS.values()},
    }
    return config.model_copy(update=update)


def check_index(config: Config) -> None:
    """DemoError telling how to build the index when there is none."""
    from retrieval.adapters.edge_index import EdgePromptIndex

    if EdgePromptIndex(config.index_dir).spec() is None:
        raise DemoError(
            f"no prompt index at {config.index_dir}: run `make demo`, or `imagine-bot ingest PATH` first "
            "(e.g. imagine-bot ingest ../shared/data/sd_prompts_real_users.parquet)"
        )


def build_demo_services(config: Config, scratch: Path, stack: ExitStack) -> tuple[Services, Engine]:
    """Services over the configured index and a throwaway SQLite database and image folder in `scratch`."""
    from bot.engine.contact_sheet import contact_sheet
    from bot.engine.conversation import Conversation
    from bot.scheduling.fair_use import FairUseLimits
    from bot.wiring import (
        assemble_services,
        build_chat_model,
        build_describer,
        build_image_editor,
        build_image_model,
        build_policy,
        build_retriever,
        image_model_factory,
    )
    from storage.db import create_db_engine, migrate, session_factory
    from storage.thread_store import SqlThreadStore

    retriever = build_retriever(config)
    stack.callback(retriever.close)
    retriever.open()
    engine = create_db_engine(f"sqlite:///{scratch / 'imagine.db'}")
    stack.callback(engine.dispose)
    migrate(engine)
    store = SqlThreadStore(session_factory(engine))
    conversation = Conversation(
        retriever,
        build_chat_model(config),
        build_image_model(config),
        store,
        scratch / "images",
        contact_sheet=contact_sheet,
        image_models=image_model_factory(config),
        policy=build_policy(config),
        editor=build_image_editor(config),
        describer=build_describer(config),
    )
    limits = FairUseLimits(config.max_concurrent_jobs, config.user_queue_cap, daily_images=0)
    app_logger = logging.getLogger("bot.demo.app")  # the transcript shows what users see; -v shows the rest
    if not logging.getLogger().isEnabledFor(logging.INFO):
        app_logger.setLevel(logging.ERROR)
    return assemble_services(conversation, store, limits, app_logger), engine


def serve_app(fake: FakeSlackApi, services: Services, engine: Engine, stack: ExitStack) -> SlackDriver:
    """The real Bolt app in HTTP mode on 127.0.0.1 (a free port) against the sandbox, and its driver."""
    from pydantic import SecretStr

    from bot.slack.app import build_app
    from bot.slack.credentials import SlackCredentials
    from bot.slack.intake.http_server import make_http_server, serving_in_background
    from sandbox.slack_driver import SlackDriver

    slack = SlackCredentials(
        bot_token=SecretStr(fake.bot_token()),
        signing_secret=SecretStr(SECRET),
        api_url=fake.api_url,
        client_id=None,  # one workspace with a bot token, whatever SLACK_CLIENT_ID says
        client_secret=None,
    )
    app = build_app(slack, services, engine=engine)
    server = make_http_server(app, "127.0.0.1", 0, signing_secret=SECRET)
    stack.enter_context(serving_in_background(server, "imagine-demo-app"))
    return SlackDriver(f"http://127.0.0.1:{server.port}", SECRET, fake)


def _write_stdout(text: str) -> None:
    """Print the transcript, replacing what the terminal's encoding cannot show."""
    try:
        sys.stdout.write(text)
    except UnicodeEncodeError:
        encoding = sys.stdout.encoding or "ascii"
        sys.stdout.write(text.encode(encoding, "replace").decode(encoding))
    sys.stdout.flush()
