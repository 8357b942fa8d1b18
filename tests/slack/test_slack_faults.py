"""Faults through the real Slack app on loopback: Slack 429s, Bedrock throttling/5xx, content filters,
retired or denied models, and an unreachable Qdrant. Each test prints its counts (requests sent, faults
injected, retries observed, outcome) with `pytest -s`.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from urllib.error import URLError

import pytest

from bot.drawing.bedrock_images import BedrockImageModel
from bot.slack.ids import ACTION_REROLL, ACTION_RETRY, COMMAND_IMAGINE
from bot.slack.reply.failure_text import LIBRARY_UNREACHABLE, describe
from retrieval.search import Retriever
from sandbox.bedrock_image_models import NOVA_BLOCKED, OUTPUT_FILTER_WORD, install_image_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi, Reply
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.reliability_record import figures
from tests.slack.slack_rig import TEAM, Json, Rig, block_ids, button_value, results, serve, wait_for

SD35 = "stability.sd3-5-large-v1:0"
NOVA = "amazon.nova-canvas-v1:0"
REGION = "us-east-1"
SLOW = 30.0  # generous waits: the rate-limit tests sleep for real


# the sandbox with a clock on every call ------------------------------------------------------------------
@dataclass(frozen=True)
class Timed:
    """One request the sandbox answered: when (monotonic), which method, which status."""

    at: float
    method: str
    status: int


class TimedSlack(FakeSlackApi):
    """FakeSlackApi that also notes when each request arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.timeline: list[Timed] = []

    def handle(self, verb: str, target: str, headers: dict[str, str], raw: bytes) -> Reply:
        arrived = time.monotonic()
        reply = super().handle(verb, target, headers, raw)
        path = target.split("?", 1)[0].lstrip("/")
        method = path.split("/", 1)[1] if path.startswith("api/") else path.split("/", 1)[0]
        self.timeline.append(Timed(arrived, method, reply[0]))
        return reply

    def of(self, method: str) -> list[Timed]:
        """The timeline of one method."""
        return [t for t in self.timeline if t.method == method]


def report(name: str, **counts: object) -> None:
    """The counts RELIABILITY.md quotes (recorded for bench/write_reliability.py; shown with `pytest -s`)."""
    sys.stdout.write(f"\n[faults] {name}: " + ", ".join(f"{k}={v}" for k, v in counts.items()) + "\n")
    figures(f"faults.{name}", **counts)


# fixtures ------------------------------------------------------------------------------------------------
@pytest.fixture
def timed() -> Iterator[TimedSlack]:
    """A started sandbox that timestamps its calls."""
    with TimedSlack() as api:
        yield api


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials, no ~/.aws, and botocore's real retry decisions without its sleeps."""
    from botocore.retries import bucket, standard

    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.0)
    monkeypatch.setattr(bucket.TokenBucket, "_sleep_amount", lambda self, amount: 0.0)


@pytest.fixture
def bedrock(aws: None) -> Iterator[FakeBedrockRuntime]:
    """The Bedrock Runtime stand-in with the image handlers."""
    with FakeBedrockRuntime() as server:
        yield install_image_handlers(server)


# helpers -------------------------------------------------------------------------------------------------
def start(fake: FakeSlackApi, rig: Rig, idea: str, timeout: float = 10.0) -> str:
    """Run /imagine in #general and return the new thread root's ts (not waiting for the turn)."""
    before = {m["ts"] for m in fake.messages(GENERAL)}
    assert rig.driver.slash_command(COMMAND_IMAGINE, idea, ALICE, GENERAL).status == 200
    roots = wait_for(
        lambda: [
            m for m in fake.messages(GENERAL) if m["ts"] not in before and "imagined" in m.get("text", "")
        ],
        timeout,
    )
    return str(roots[-1]["ts"])


def errors_in(fake: FakeSlackApi, root_ts: str, channel: str = GENERAL) -> list[Json]:
    """Error messages (":x: …") in a thread."""
    return [m for m in fake.messages(channel, root_ts) if m.get("text", "").startswith(":x:")]


def wait_error(fake: FakeSlackApi, root_ts: str, timeout: float = 10.0) -> Json:
    """The thread's (first) error message, once it is there."""
    return wait_for(lambda: errors_in(fake, root_ts), timeout)[0]


def has_retry(message: Json) -> bool:
    """Whether a message carries the Retry button."""
    return "error_actions" in block_ids(message)


def suggestion_of(message: Json) -> str | None:
    """The text of the suggestion block of an error message, if any."""
    for block in message["blocks"]:
        if block.get("block_id") == "fault_suggestion":
            return str(block["text"]["text"])
    return None


def kinds(rig: Rig, root_ts: str, channel: str = GENERAL) -> list[str]:
    """Kinds of the stored turns of a thread."""
    from bot.engine.ports import ThreadRef

    record = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, channel, root_ts))
    assert record is not None
    _, turns = rig.services.conversation.history(TEAM, record.id)
    return [turn.kind for turn in turns]


def gaps_after_429(calls: list[Timed]) -> list[float]:
    """Seconds from each 429 answer to the next request of the same method."""
    return [later.at - call.at for call, later in pairwise(calls) if call.status == 429]


# Slack 429 -----------------------------------------------------------------------------------------------
def test_slack_429s_are_waited_out_and_nothing_is_lost(
    timed: TimedSlack, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(timed, retriever, tmp_path) as rig:
        timed.fail_next("chat.postMessage", retry_after=1, times=2)  # the thread root, twice
        timed.fail_next("files.completeUploadExternal", retry_after=1, times=1)
        root_ts = start(timed, rig, "a lighthouse at dusk", timeout=SLOW)
        wait_for(lambda: results(timed, root_ts), SLOW)

    posts, completes = timed.of("chat.postMessage"), timed.of("files.completeUploadExternal")
    assert [c.status for c in posts[:3]] == [429, 429, 200]
    assert [c.status for c in completes] == [429, 200]
    waits = gaps_after_429(posts) + gaps_after_429(completes)
    assert len(waits) == 3 and all(wait >= 1.0 for wait in waits)  # Retry-After: 1 was honoured
    roots = [m for m in timed.messages(GENERAL) if "lighthouse" in json.dumps(m.get("blocks"))]
    thread = timed.messages(GENERAL, root_ts)
    assert len(roots) == 1 and len(results(timed, root_ts)) == 1  # no duplicates ...
    assert len([m for m in thread if "hit_1" in block_ids(m)]) == 1
    assert len(timed.uploads()) == 1 and [m for m in thread if m.get("files")]  # ... and nothing lost
    assert not [m for m in thread if "status" in block_ids(m)] and not errors_in(timed, root_ts)
    report(
        "slack 429 (Retry-After: 1)",
        requests=len(timed.timeline),
        faults_injected=3,
        retries_observed=len(waits),
        min_wait_s=round(min(waits), 2),
        outcome="root, hits, image and result each posted once",
    )


def test_a_slack_503_is_retried_once(timed: TimedSlack, retriever: Retriever, tmp_path: Path) -> None:
    with serve(timed, retriever, tmp_path) as rig:
        timed.fail_next("chat.postMessage", error="service_unavailable", status=503, times=1)
        root_ts = start(timed, rig, "a lighthouse at dusk", timeout=SLOW)
        wait_for(lambda: results(timed, root_ts), SLOW)
    posts = timed.of("chat.postMessage")
    assert [c.status for c in posts[:2]] == [503, 200] and len(results(timed, root_ts)) == 1
    roots = [m for m in timed.messages(GENERAL) if "lighthouse" in json.dumps(m.get("blocks"))]
    assert len(roots) == 1
    report(
        "slack 503",
        requests=len(timed.timeline),
        faults_injected=1,
        retries_observed=1,
        outcome="posted once",
    )


def test_a_status_line_and_an_upload_refused_past_the_retries_do_not_break_the_turn(
    timed: TimedSlack, retriever: Retriever, tmp_path: Path
) -> None:
    from bot.slack.app import RATE_LIMIT_RETRIES

    attempts = RATE_LIMIT_RETRIES + 1
    with serve(timed, retriever, tmp_path) as rig:
        with timed.state() as ws:
            dm = ws.im_for(ws.teams[TEAM], ALICE).id
        # in a DM the user's message is the root, so the bot's first post is the status line
        timed.fail_next("chat.postMessage", retry_after=0, times=attempts)
        timed.fail_next("files.completeUploadExternal", retry_after=0, times=attempts)
        message = rig.driver.user_posts(dm, "a paper boat on a puddle", ALICE)
        root_ts = str(message["ts"])
        wait_for(lambda: [m for m in timed.messages(dm, root_ts) if "result_actions" in block_ids(m)], SLOW)
        [note] = wait_for(lambda: errors_in(timed, root_ts, dm), SLOW)
        assert kinds(rig, root_ts, dm) == ["start"]

    assert "slow down" in note["text"] and "Re-roll" in note["text"] and not has_retry(note)
    posts, completes = timed.of("chat.postMessage"), timed.of("files.completeUploadExternal")
    assert [c.status for c in posts[:attempts]] == [429] * attempts and posts[attempts].status == 200
    assert [c.status for c in completes] == [429] * attempts
    thread = timed.messages(dm, root_ts)
    assert [m for m in thread if "hit_1" in block_ids(m)] and not [m for m in thread if m.get("files")]
    report(
        "slack 429 past the retries",
        requests=len(timed.timeline),
        faults_injected=2 * attempts,
        retries_observed=sum(c.status == 429 for c in posts + completes) - 2,  # two calls gave up
        outcome="turn stored, hits and result posted, a note instead of the image",
    )


def test_in_oauth_mode_each_installed_teams_client_waits_out_a_429(
    timed: TimedSlack, retriever: Retriever, tmp_path: Path
) -> None:
    from tests.slack.test_slack_oauth import CLIENT_ID, CLIENT_SECRET, OAUTH, _install

    timed.register_oauth_client(CLIENT_ID, CLIENT_SECRET)
    with serve(timed, retriever, tmp_path, slack=OAUTH) as rig:
        assert _install(rig, timed, TEAM).status == 200
        timed.clear_calls()
        timed.fail_next("chat.postMessage", retry_after=1, times=1)
        root_ts = start(timed, rig, "a red fox in the snow", timeout=SLOW)
        wait_for(lambda: results(timed, root_ts), SLOW)
    posts = timed.calls_to("chat.postMessage")
    assert [c.status for c in posts[:2]] == [429, 200] and {c.team_id for c in posts[1:]} == {TEAM}
    waits = gaps_after_429(timed.of("chat.postMessage"))
    assert len(waits) == 1 and waits[0] >= 1.0 and len(results(timed, root_ts)) == 1
    report("slack 429 in OAuth mode", faults_injected=1, retries_observed=1, wait_s=round(waits[0], 2))


# Bedrock throttling and 5xx ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code"), [(429, "ThrottlingException"), (503, "ServiceUnavailableException")]
)
def test_bedrock_busy_past_botocore_retries_gets_a_retry_button(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    bedrock: FakeBedrockRuntime,
    status: int,
    code: str,
) -> None:
    model = BedrockImageModel(SD35, REGION, endpoint_url=bedrock.url, max_attempts=3)
    with serve(fake, retriever, tmp_path, images=model) as rig:
        bedrock.fail_next(status, code, "Too many requests, please wait.", times=2, model_prefix=SD35)
        recovered = start(fake, rig, "a red fox in the snow")
        wait_for(lambda: results(fake, recovered))
        assert not errors_in(fake, recovered)
        first = len(bedrock.requests_for("invoke", SD35))

        bedrock.fail_next(status, code, "Too many requests, please wait.", times=3, model_prefix=SD35)
        root_ts = start(fake, rig, "a lighthouse at dusk")
        failed = wait_error(fake, root_ts)
        second = len(bedrock.requests_for("invoke", SD35)) - first
        assert "busy" in failed["text"] and "3 attempts" in failed["text"] and has_retry(failed)
        assert not results(fake, root_ts)

        rig.driver.block_action(ACTION_RETRY, button_value(failed, ACTION_RETRY), BOB, GENERAL, failed["ts"])
        wait_for(lambda: results(fake, root_ts))
        assert kinds(rig, root_ts) == ["start"] and fake.message(GENERAL, failed["ts"]) is None
        third = len(bedrock.requests_for("invoke", SD35)) - first - second
    assert (first, second, third) == (3, 3, 1)
    report(
        f"bedrock {status} {code}",
        requests=first + second + third,
        faults_injected=5,
        retries_observed=f"botocore {first - 1} (recovered) + {second - 1} (gave up)",
        outcome="first turn drawn; second: thread error with Retry; Retry drew it",
    )


# content filters -----------------------------------------------------------------------------------------
def test_an_input_filter_says_why_and_suggests_a_reworded_prompt(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, bedrock: FakeBedrockRuntime
) -> None:
    model = BedrockImageModel(NOVA, REGION, endpoint_url=bedrock.url)
    with serve(fake, retriever, tmp_path, images=model) as rig:
        bedrock.fail_next(400, "ValidationException", NOVA_BLOCKED, times=1, model_prefix=NOVA)
        root_ts = start(fake, rig, "a knight, blood soaked armor, beheaded enemies --ar 3:2")
        failed = wait_error(fake, root_ts)
        assert kinds(rig, root_ts) == []
    text = failed["text"]
    assert "content filter" in text and "input filter" in text and "nothing was drawn" in text
    assert "blood soaked" in text and "beheaded" in text
    assert not has_retry(failed)  # the same prompt would be refused again
    suggestion = suggestion_of(failed)
    assert suggestion is not None and "`/imagine a knight, armor, enemies --ar 3:2`" in suggestion
    assert len(bedrock.requests_for("invoke", NOVA)) == 1
    report(
        "content filter (input)",
        requests=1,
        faults_injected=1,
        retries_observed=0,
        outcome="reason + suggestion '/imagine a knight, armor, enemies --ar 3:2', no Retry",
    )


def test_an_output_filter_offers_retry_for_a_new_seed(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, bedrock: FakeBedrockRuntime
) -> None:
    model = BedrockImageModel(SD35, REGION, endpoint_url=bedrock.url)
    with serve(fake, retriever, tmp_path, images=model) as rig:
        root_ts = start(fake, rig, f"a red fox {OUTPUT_FILTER_WORD}")
        failed = wait_error(fake, root_ts)
        assert kinds(rig, root_ts) == []
    assert "blocked" in failed["text"] and "output image filter" in failed["text"]
    assert "new seed" in failed["text"] and has_retry(failed) and suggestion_of(failed) is None
    report(
        "content filter (output)", requests=1, faults_injected=1, retries_observed=0, outcome="reason + Retry"
    )


# retired or denied models --------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["retired", "denied"])
def test_a_retired_or_denied_model_tells_the_user_and_logs_one_operator_line(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    bedrock: FakeBedrockRuntime,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    caplog.set_level(logging.INFO)
    model = BedrockImageModel(SD35, REGION, endpoint_url=bedrock.url)
    if fault == "retired":
        bedrock.retire(SD35)
    else:
        bedrock.fail_next(
            403, "AccessDeniedException", "You don't have access to the model.", model_prefix=SD35
        )
    with serve(fake, retriever, tmp_path, images=model) as rig:
        root_ts = start(fake, rig, "a lighthouse at dusk")
        failed = wait_error(fake, root_ts)
    text = failed["text"]
    assert "ask the admin" in text and not has_retry(failed)
    assert SD35 not in text and "IMAGINE_" not in text and REGION not in text  # details are the operator's
    operator = [r for r in caplog.records if r.levelno >= logging.WARNING and SD35 in r.getMessage()]
    assert len(operator) == 1, [r.getMessage() for r in operator]
    [line] = operator
    message = line.getMessage()
    assert line.levelno == logging.ERROR and REGION in message and not line.exc_info
    if fault == "retired":
        assert "end of life" in message and "IMAGINE_IMAGE_MODEL=" in message
    else:
        assert "enable model access" in message and "Bedrock console" in message
    assert not [r for r in caplog.records if r.exc_info]
    report(
        f"bedrock model {fault}",
        requests=len(bedrock.requests_for("invoke", SD35)),
        faults_injected=1,
        retries_observed=len(bedrock.requests_for("invoke", SD35)) - 1,
        outcome="user told to ask the admin; one ERROR line with model, region and fix",
    )


# Qdrant unreachable --------------------------------------------------------------------------------------
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_qdrant_fails_new_ideas_clearly_while_other_threads_carry_on(
    fake: FakeSlackApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from qdrant_client import QdrantClient

    from bot.config import Config
    from bot.engine.ports import ThreadRef
    from bot.wiring import build_index
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.adapters.qdrant_index import QdrantClientPromptIndex
    from retrieval.errors import IndexUnavailableError

    caplog.set_level(logging.WARNING)
    monkeypatch.setenv("IMAGINE_QDRANT_URL", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("IMAGINE_QDRANT_TIMEOUT_S", "1")
    config = Config()
    started = time.monotonic()
    with pytest.raises(IndexUnavailableError, match="IMAGINE_QDRANT_URL"):
        build_index(config)  # at start-up the bot refuses to run without its library
    assert time.monotonic() - started < 3.0
    # the library going away while the bot runs: the same adapter over a client of the closed port
    client = QdrantClient(url=config.qdrant_url, timeout=1, check_compatibility=False)
    index = QdrantClientPromptIndex(client, config.collection)
    down = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), index)
    with serve(fake, down, tmp_path) as rig:
        # a thread that was started before: its replies and re-rolls need no retrieval
        earlier = fake.post_as_user(GENERAL, "a lighthouse at dusk", ALICE)
        earlier_ts = str(earlier["ts"])
        thread = rig.services.threads.open_thread(ThreadRef(TEAM, GENERAL, earlier_ts), ALICE, "imagine", "x")
        rig.services.conversation.edit(TEAM, thread.id, "a lighthouse at dusk, oil painting")

        asked = time.monotonic()
        assert rig.driver.slash_command(COMMAND_IMAGINE, "a red fox in the snow", BOB, GENERAL).status == 200
        rig.driver.user_posts(GENERAL, "make it stormy", ALICE, thread_ts=earlier_ts)
        fox = wait_for(
            lambda: [m for m in fake.messages(GENERAL) if "red fox" in json.dumps(m.get("blocks"))]
        )
        fox_ts = str(fox[0]["ts"])
        failed = wait_error(fake, fox_ts)
        answered_in = time.monotonic() - asked
        [refined] = wait_for(lambda: results(fake, earlier_ts))
        rig.driver.block_action(
            ACTION_REROLL, button_value(refined, ACTION_REROLL), ALICE, GENERAL, refined["ts"]
        )
        wait_for(lambda: len(results(fake, earlier_ts)) == 2)
        assert kinds(rig, earlier_ts) == ["edit", "refine", "reroll"]

        assert LIBRARY_UNREACHABLE in failed["text"] and has_retry(failed)
        assert not results(fake, fox_ts) and answered_in < 5.0
        rig.driver.block_action(ACTION_RETRY, button_value(failed, ACTION_RETRY), BOB, GENERAL, failed["ts"])
        wait_for(lambda: fake.message(GENERAL, failed["ts"]) is None and errors_in(fake, fox_ts))
        again = wait_error(fake, fox_ts)
        assert again["ts"] != failed["ts"] and has_retry(again)  # still down: told again, nothing crashed

    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    library = [m for m in warnings if m.startswith("turn failed") and "Connection refused" in m]
    assert len(library) == 2  # one operator line per failed turn
    # the reply still refined: only its search for new references failed, said once
    assert len([m for m in warnings if m.startswith("no new references") and "Qdrant" in m]) == 1
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    report(
        "qdrant unreachable",
        requests="2 /imagine (1 + Retry), 1 reply, 1 re-roll",
        faults_injected="closed port",
        retries_observed=0,
        answered_in_s=round(answered_in, 2),
        outcome="library message with Retry twice; the other thread refined and re-rolled",
    )


def test_a_silent_qdrant_times_out_within_the_configured_seconds() -> None:
    from qdrant_client import QdrantClient

    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.adapters.qdrant_index import QdrantClientPromptIndex
    from retrieval.errors import IndexUnavailableError

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        index = QdrantClientPromptIndex(
            QdrantClient(url=url, timeout=1, check_compatibility=False), "prompts"
        )
        retriever = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), index)
        started = time.monotonic()
        with pytest.raises(IndexUnavailableError, match="cannot reach Qdrant") as caught:
            retriever.search("a red fox")
        waited = time.monotonic() - started
    assert 0.9 <= waited < 3.0 and describe(caught.value).text == LIBRARY_UNREACHABLE
    report(
        "qdrant silent",
        requests=1,
        faults_injected="no answer",
        waited_s=round(waited, 2),
        outcome="typed error",
    )


# describe() on its own -----------------------------------------------------------------------------------
def test_describe_maps_every_kind_of_failure() -> None:
    from slack_sdk.errors import SlackApiError

    from bot.engine.turn_errors import (
        AccessDeniedError,
        BotError,
        ContentFilteredError,
        ModelUnavailableError,
        UpstreamError,
    )
    from retrieval.errors import EmptyQueryError, IndexMissingError, IndexUnavailableError
    from storage.db_errors import DatabaseBusyError, StorageError

    text, retry, suggestion = describe(
        ContentFilteredError("x refused the prompt", "prompt"), "a nude woman", "/imagine"
    )
    assert "input filter" in text and not retry and suggestion == "/imagine a woman"
    assert describe(ContentFilteredError("x", "prompt"), "a red fox", "/imagine").suggestion is None
    assert describe(ModelUnavailableError("IMAGINE_CHAT_MODEL=… retired")).text.startswith("The chat model")
    assert not describe(AccessDeniedError("denied")).retry
    assert describe(UpstreamError("x did not answer in time: try again")).retry
    assert describe(BotError("there is no library prompt #7")) == (
        "There is no library prompt #7",
        False,
        None,
    )
    assert describe(IndexUnavailableError("down")) == (LIBRARY_UNREACHABLE, True, None)
    assert not describe(IndexMissingError("missing")).retry and not describe(EmptyQueryError("empty")).retry
    assert describe(DatabaseBusyError("locked")).retry and describe(StorageError("gone")).retry
    slack = SlackApiError("no", {"ok": False, "error": "ratelimited"})  # type: ignore[no-untyped-call]
    assert describe(slack).text == "Slack refused my reply (ratelimited)."
    assert describe(RuntimeError("boom")).text.startswith("Something went wrong")
    assert "network" in describe(URLError("refused")).text and describe(ConnectionResetError()).retry
