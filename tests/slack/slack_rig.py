"""The Slack test rig: the real Bolt app over HTTP on 127.0.0.1 against FakeSlackApi, offline models."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import SecretStr

from bot.drawing.offline_edits import OfflineImageEditor
from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine.contact_sheet import contact_sheet
from bot.engine.conversation import Conversation
from bot.engine.policy import Denylist, PromptPolicy
from bot.engine.ports import ChatModel, ImageEditor, ImageModel
from bot.scheduling.fair_use import FairUseLimits
from bot.slack.app import build_app
from bot.slack.credentials import SlackCredentials
from bot.slack.ids import COMMAND_IMAGINE
from bot.slack.intake.health import HealthReport
from bot.slack.intake.http_server import make_http_server, serving_in_background
from bot.slack.services import Services
from bot.wiring import assemble_services
from bot.writing.claude import BedrockChatModel
from bot.writing.offline_composer import OfflineComposer
from bot.writing.offline_describer import OfflineDescriber
from retrieval.safety import SafetyClassifier
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, GENERAL
from storage.db import create_db_engine, migrate, session_factory
from storage.thread_store import SqlThreadStore

SECRET = "app-test-signing-secret"
DENYLIST = "T0001: rival corp logo\n"  # the sandbox workspace bans one phrase
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TEAM = "T0001"
T = TypeVar("T")
Json = dict[str, Any]


def wait_for(probe: Callable[[], T | Literal[False] | None], timeout: float = 10.0) -> T:
    """Poll until `probe` returns something truthy (never False or None), failing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            assert result, "timed out waiting"
            return result
        time.sleep(0.02)


def settle(fake: FakeSlackApi, quiet: float = 0.3, timeout: float = 15.0) -> None:
    """Wait until the app has made no Slack call for `quiet` seconds (its lazy listeners are done)."""
    fake.wait_until_quiet(quiet, timeout)


@dataclass
class Rig:
    """The app served on a local port, its driver and its services."""

    driver: SlackDriver
    services: Services


@contextmanager
def serve(
    fake: FakeSlackApi,
    retriever: Retriever,
    folder: Path,
    limits: FairUseLimits | None = None,
    slack: dict[str, Any] | None = None,
    images: ImageModel | None = None,
    health: Callable[[Services], Callable[[], HealthReport]] | None = None,
    db_url: str | None = None,
    editor: ImageEditor | None = None,
    chat: ChatModel | None = None,
) -> Iterator[Rig]:
    """Serve the Bolt app over `folder`'s SQLite file until the block ends (`slack`: SlackCredentials fields).

    `health` builds GET /healthz's check from the services (e.g. bot.wiring.build_health); `db_url`
    names another database instead (a Postgres one, or one shared by two rigs as two replicas).
    """
    engine = create_db_engine(db_url or f"sqlite:///{folder / 'imagine.db'}")
    migrate(engine)
    store = SqlThreadStore(session_factory(engine))
    composer = chat or OfflineComposer(None)
    conversation = Conversation(
        retriever,
        composer,
        images or OfflinePreviewImageModel(),
        store,
        folder / "images",
        contact_sheet=contact_sheet,
        policy=PromptPolicy(Denylist.parse(DENYLIST, "rig"), SafetyClassifier()),
        editor=editor or OfflineImageEditor(),
        describer=composer if isinstance(composer, BedrockChatModel) else OfflineDescriber(),
    )
    services = assemble_services(
        conversation, store, limits or FairUseLimits(), logging.getLogger("test.slack_app")
    )
    fields: dict[str, Any] = {
        "bot_token": SecretStr(fake.bot_token()),
        "signing_secret": SecretStr(SECRET),
        "api_url": fake.api_url,
        **(slack or {}),
    }
    credentials = SlackCredentials(**fields)
    server = make_http_server(
        build_app(credentials, services, engine=engine),
        signing_secret=credentials.signing_secret.get_secret_value(),
        health=health(services) if health is not None else None,
    )
    try:
        with serving_in_background(server):
            yield Rig(SlackDriver(f"http://127.0.0.1:{server.port}", SECRET, fake), services)
    finally:
        if services.jobs is not None:
            services.jobs.close()
        engine.dispose()


# helpers ---------------------------------------------------------------------------------------------------
def block_ids(message: Json) -> list[str]:
    """The block ids of a message."""
    return [str(block.get("block_id", "")) for block in message.get("blocks") or []]


def results(fake: FakeSlackApi, root_ts: str) -> list[Json]:
    """Result messages (with the Re-roll row) in a thread."""
    return [m for m in fake.messages(GENERAL, root_ts) if "result_actions" in block_ids(m)]


def hits_of(fake: FakeSlackApi, root_ts: str) -> list[Json]:
    """Hits messages in a thread."""
    return [m for m in fake.messages(GENERAL, root_ts) if "hit_1" in block_ids(m)]


def button_value(message: Mapping[str, Any], action_id: str, block_id: str | None = None) -> str:
    """The value of a button in a message."""
    for block in message["blocks"]:
        elements = [*(block.get("elements") or []), block.get("accessory") or {}]
        for element in elements:
            if element.get("action_id") == action_id and block_id in (None, block.get("block_id")):
                return str(element["value"])
    raise AssertionError(f"no {action_id} button")


def imagine(fake: FakeSlackApi, rig: Rig, text: str) -> str:
    """Run /imagine in #general, wait for its first result and return the thread root's ts."""
    before = {m["ts"] for m in fake.messages(GENERAL)}
    started = time.monotonic()
    status, _ = rig.driver.slash_command(COMMAND_IMAGINE, text, ALICE, GENERAL)
    assert status == 200 and time.monotonic() - started < 2.0
    roots = wait_for(
        lambda: [
            m for m in fake.messages(GENERAL) if m["ts"] not in before and "imagined" in m.get("text", "")
        ]
    )
    root_ts = str(roots[-1]["ts"])
    wait_for(lambda: results(fake, root_ts))
    return root_ts


def next_ts(fake: FakeSlackApi) -> str:
    """A fresh message timestamp from the sandbox clock."""
    with fake.state() as ws:
        return str(ws.next_ts())
