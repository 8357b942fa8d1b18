"""Property-based tests (hypothesis) over everything Slack can send the app, and over the pure parsers.

One app serves the whole module (a seed thread and an avatar brainstorm give the generated payloads real
ids to hit). For every generated slash command, thread reply, event envelope, button click, modal
submission and raw body the properties are: the HTTP status is below 500; no log record at ERROR and no
traceback from any logger while it is handled; and where a person is waiting (a valid command, a mention,
a reply with words in a bot thread, a well-formed click, an Edit prompt submission) something they can see
comes back. That oracle is checked against what the sandbox recorded after the request (the ack body, new
ephemerals, response_url posts, modals, thread messages); those properties also count the outcomes they
saw and require each kind to occur (threads started as well as ephemeral acks, refinements as well as
ignored replies, answered clicks as well as malformed ones), so they cannot pass by generating only
inputs that are turned away early. Exact inputs that once broke the app are kept as tests at the end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
import unicodedata
import urllib.error
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.engine.options import (
    AVATAR_DEFAULT,
    MAX_CANDIDATES,
    MAX_IDEA_CHARS,
    MAX_IMAGES,
    MAX_SEED,
    MODEL_ALIASES,
    OPTION_NAMES,
    ImagineCommand,
    OptionError,
    parse_imagine,
)
from bot.engine.ports import ASPECT_RATIOS, HitForPrompt, ImageRecord, PromptDraft, ThreadRef, UserDefaults
from bot.engine.ports import ThreadRecord as Thread
from bot.engine.ports import TurnRecord as Turn
from bot.engine.turns import StoredImage, TurnOptions, TurnResult
from bot.slack.handlers.thread_start import retry_text
from bot.slack.ids import (
    ACTION_OPEN_DEFAULTS,
    ACTION_PICK_WINNER,
    ACTION_REROLL,
    ACTION_RETRY,
    ACTION_USE_HIT,
    ACTIONS,
    COMMAND_AVATAR,
    COMMAND_IMAGINE,
    VIEW_CHANNEL_DEFAULTS,
    VIEW_EDIT_PROMPT,
    VIEW_USER_DEFAULTS,
    VIEWS,
)
from bot.slack.intake.request_guard import MAX_BODY_BYTES
from bot.slack.reply import home_view as home
from bot.slack.reply import message_blocks as b
from bot.slack.reply import modal_views as modals
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, ALICE_DM, APP_ID, BOB, GENERAL, PRIVATE, RANDOM
from storage.defaults_store import SavedPromptRecord
from tests.slack.slack_rig import (
    TEAM,
    Json,
    Rig,
    block_ids,
    button_value,
    hits_of,
    imagine,
    results,
    serve,
    settle,
    wait_for,
)
from tests.slack.test_reply_blocks import check_home, check_message, check_modal

FORM = "application/x-www-form-urlencoded"
SETTINGS_VIEWS = (VIEW_USER_DEFAULTS, VIEW_CHANNEL_DEFAULTS)
# Examples per property (the module runs in about a minute; raise them locally to search harder).
N_COMMANDS = 40
N_REPLIES = 25
N_MENTIONS = 12
N_EVENTS = 50
N_CLICKS = 50
N_VIEWS = 40
N_EDITS = 15
N_RAW = 40
N_PURE = 300
COUNTS: dict[str, int] = {}  # property -> examples run (reported by the last test of the module)
RUN = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


# --- the app under test ------------------------------------------------------------------------------------
class Problems(logging.Handler):
    """ERROR records and records with a traceback, from any logger, while the module runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.found.append(self.format(record))


@dataclass
class App:
    """The served app, its sandbox, and the ids of a seed thread and an avatar brainstorm."""

    fake: FakeSlackApi
    rig: Rig
    problems: Problems
    root: str
    thread: int
    turns: list[int]
    result_ts: str
    hits_ts: str
    avatar_root: str
    avatar_thread: int
    candidates_ts: str
    clicks: set[str] = field(default_factory=set)
    retried: set[str] = field(default_factory=set)
    ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10**9)))

    def thread_ids(self) -> list[int]:
        """Ids a generated payload may name: real ones and ones that do not exist."""
        return [self.thread, self.avatar_thread, 0, 999_999, 2**31, 2**63]


@pytest.fixture(scope="module")
def app(retriever: Retriever, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """One app for the module, in a clean environment, with a seed thread and a brainstorm."""
    problems = Problems()
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("IMAGINE_", "AWS_", "SLACK_"))]:
            patch.delenv(name)
        with FakeSlackApi() as fake, serve(fake, retriever, tmp_path_factory.mktemp("props")) as rig:
            logging.getLogger().addHandler(problems)
            try:
                yield seed(fake, rig, problems)
            finally:
                logging.getLogger().removeHandler(problems)


def seed(fake: FakeSlackApi, rig: Rig, problems: Problems) -> App:
    """A finished /imagine thread and an /avatar brainstorm in #general."""
    root = imagine(fake, rig, "a cozy cabin in the woods")
    [result] = results(fake, root)
    thread = int(button_value(result, ACTION_REROLL).split(":")[0])
    assert rig.driver.slash_command(COMMAND_AVATAR, "friendly robots", ALICE, GENERAL).status == 200
    avatar = wait_for(lambda: [m for m in fake.messages(GENERAL) if "friendly robots" in _text(m)])[-1]
    avatar_root = str(avatar["ts"])
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, avatar_root) if "brainstorm_actions" in block_ids(m)]
    )
    avatar_thread = int(button_value(candidates, ACTION_PICK_WINNER))
    turns = [t.id or 0 for t in rig.services.threads.turns(TEAM, thread)]
    settle(fake, quiet=0.15, timeout=20.0)
    assert problems.found == [], problems.found
    return App(
        fake,
        rig,
        problems,
        root,
        thread,
        turns,
        str(result["ts"]),
        str(hits_of(fake, root)[0]["ts"]),
        avatar_root,
        avatar_thread,
        str(candidates["ts"]),
    )


def _text(item: Any) -> str:
    """Anything as searchable text."""
    return json.dumps(item, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Seen:
    """What a user could see at one moment: their ephemerals, response_url posts and modals (counts, which
    only grow), and the bot messages present anywhere (a Retry deletes one message as it posts another)."""

    ephemerals: int
    responses: int
    modals: int
    messages: frozenset[str]

    @staticmethod
    def now(fake: FakeSlackApi, user: str) -> Seen:
        """The user's view of the sandbox now."""
        with fake.state() as ws:
            present = frozenset(
                f"{c.id}/{m['ts']}" for c in ws.channels.values() for m in c.messages if m.get("bot_id")
            )
        return Seen(
            len(fake.ephemerals(user)),
            len([r for r in fake.responses() if r["user"] == user]),
            len([v for v in fake.views(user) if v["type"] == "modal"]),
            present,
        )

    def changed(self, fake: FakeSlackApi, user: str) -> bool:
        """True when something new is visible to the user now."""
        now = Seen.now(fake, user)
        grew = (now.ephemerals, now.responses, now.modals) != (self.ephemerals, self.responses, self.modals)
        return grew or bool(now.messages - self.messages)

    def answered(self, fake: FakeSlackApi, user: str) -> bool:
        """Wait for something new, let the app finish, and say whether something new is still there (a
        status line that was deleted again does not count)."""
        wait_for(lambda: self.changed(fake, user), timeout=30)
        settle(fake, quiet=0.3)
        return self.changed(fake, user)


def clean_after(app: App, label: str, status: int) -> None:
    """The request got a non-5xx answer and nothing logged an error or a traceback."""
    settle(app.fake, quiet=0.15, timeout=20.0)
    found, app.problems.found[:] = list(app.problems.found), []
    COUNTS[label] = COUNTS.get(label, 0) + 1
    assert status < 500, f"{label}: HTTP {status}"
    assert found == [], f"{label}:\n" + "\n\n".join(found)


def signed_json(app: App, body: Any) -> int:
    """POST a signed JSON body (an Events API delivery)."""
    return app.rig.driver.post_raw(json.dumps(body), "application/json", kind="event:prop").status


def signed_payload(app: App, payload: Any) -> tuple[int, str]:
    """POST a signed interactivity `payload` form field; (status, body)."""
    field_ = payload if isinstance(payload, str) else json.dumps(payload)
    answer = app.rig.driver.post_raw(urlencode({"payload": field_}), FORM, kind="interaction:prop")
    return answer.status, answer.body


# --- strategies --------------------------------------------------------------------------------------------
ENTITIES = [
    "<@U0ALICE>",
    "<@U0BOT>",
    "<@U0NOBODY|nobody>",
    "<#C0GENERAL|general>",
    "<!here>",
    "<!channel>",
    "<!subteam^S123|@team>",
    "<https://example.com|a link>",
    "<mailto:a@b.c|mail>",
    "&amp;",
    "&lt;",
    "&gt;",
    "&amp;lt;b&amp;gt;",
    "&lt;script&gt;alert(1)&lt;/script&gt;",
]
EMOJI = ["🐱", "👩‍👩‍👧‍👦", "🇺🇸", "🏳️‍🌈", "e\u0301", "\u200d", "\ufe0f", "🏻", ":tada:", "ﷺ", "𝔘𝔫𝔦"]
ODD = [
    "\x00",
    "\x07",
    "\x1b[31m",
    "\x7f",
    "\u200b",
    "\u202e",
    "\u2066",
    "\ufeff",
    "\r\n",
    "\t",
    "\u2028",
    "\x85",
]
DASHES = ["--", "\u2014", "\u2013", "-\u2014", "\u2212", "\uff0d\uff0d", "—-"]
FLAG_VALUES = [
    "3:2",
    "16x9",
    "1.5",
    "0:0",
    "9:1",
    "4/3",
    "½",
    "²",
    "-1",
    "99999999999",
    "offline",
    "sd3.5",
    "core",
    "bedrock:stability.sd3-5-large-v1:0",
    "bedrock:",
    "sagemaker:my-endpoint",
    "local:all-MiniLM-L6-v2",
    '"oil painting"',
    "\u201cink wash\u201d",
    "'",
    '"unclosed words',
    "text, watermark",
]
words = st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=12)
flag_names = st.sampled_from([name[2:] for name in OPTION_NAMES]) | st.from_regex(
    r"[a-z][a-z-]{0,10}", fullmatch=True
)
flag_values = st.sampled_from(FLAG_VALUES) | st.integers(-(10**13), 10**13).map(str) | st.text(max_size=15)


@st.composite
def flag_tokens(draw: st.DrawFn) -> str:
    """A flag as people type it: any dash form, any case, a value or none, `=` or a space."""
    name = draw(flag_names)
    name = name.upper() if draw(st.booleans()) and draw(st.booleans()) else name
    token = draw(st.sampled_from(DASHES)) + name
    if draw(st.booleans()):
        return token
    return token + draw(st.sampled_from(["=", " ", "  "])) + draw(flag_values)


tokens = st.one_of(
    words,
    words,
    st.sampled_from(ENTITIES),
    st.sampled_from(EMOJI),
    st.sampled_from(ODD),
    flag_tokens(),
    st.text(max_size=8),
)
slack_texts = st.one_of(
    st.lists(tokens, max_size=14).map(" ".join),
    st.lists(tokens, max_size=8).map("\n".join),
    st.text(max_size=200),
    st.builds(lambda word, n, tail: " ".join([word] * n) + tail, words, st.integers(200, 2500), flag_values),
    st.sampled_from(["", " ", "help", "HELP", "--help", "--", "--settings", "--avatar", "—ar 3:2 cat"]),
)
junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=8,
)
huge = st.integers(2_000, 120_000).map(lambda n: "9" * n) | st.integers(2_000, 60_000).map(
    lambda n: "é🐱" * n
)


# --- slash commands ----------------------------------------------------------------------------------------
MEMBERS = [(ALICE, GENERAL), (BOB, GENERAL), (ALICE, PRIVATE), (ALICE, ALICE_DM), (ALICE, RANDOM)]


def test_any_slash_command_gets_a_visible_answer(app: App) -> None:
    outcomes: Counter[str] = Counter()

    @settings(RUN, max_examples=N_COMMANDS)
    @given(
        command=st.sampled_from([COMMAND_IMAGINE, COMMAND_IMAGINE, COMMAND_AVATAR]),
        text=slack_texts,
        where=st.sampled_from(MEMBERS),
    )
    def prop(command: str, text: str, where: tuple[str, str]) -> None:
        user, channel = where
        fake = app.fake
        before = Seen.now(fake, user)
        roots = {m["ts"] for m in fake.messages(channel)}
        started = time.monotonic()
        answer = app.rig.driver.slash_command(command, text, user, channel)
        assert time.monotonic() - started < 2.5, "the ack must beat Slack's 3-second limit"
        assert answer.status == 200, (answer.status, answer.body[:300])
        reply = answer.json()
        if answer.body:
            assert isinstance(reply, dict) and reply.get("response_type") == "ephemeral", answer.body[:300]
            assert str(reply.get("text", "")).strip() and len(answer.body) < 12_000
            outcomes["ack ephemeral"] += 1
        else:
            assert before.answered(fake, user), "a slash command got no lasting answer"
            new = [m for m in fake.messages(channel) if m["ts"] not in roots and m.get("bot_id")]
            if new:  # a thread started: the person waits for its first result or a clear error
                ts = str(new[-1]["ts"])
                wait_for(lambda: finished(fake, channel, ts), timeout=30)
                outcomes["thread"] += 1
            else:
                outcomes["ephemeral, response or modal"] += 1
        clean_after(app, "slash command", answer.status)

    prop()
    COUNTS.update({f"slash command, {kind}": n for kind, n in outcomes.items()})
    assert min(outcomes["ack ephemeral"], outcomes["thread"]) >= 3, outcomes


def finished(fake: FakeSlackApi, channel: str, root_ts: str) -> bool:
    """True once the thread has a result or an error message."""
    replies = fake.messages(channel, root_ts)[1:]
    return any("result_actions" in block_ids(m) or ":x:" in _text(m) or "brainstorm_actions" in block_ids(m)
               for m in replies)  # fmt: skip


# --- thread replies and mentions ---------------------------------------------------------------------------
MENTION = re.compile(r"<@[A-Z0-9]+(?:\|[^>]*)?>")
ENTITY = re.compile(r"&(amp|lt|gt);")


def has_words(text: str) -> bool:
    """True when the text, without user mentions and Slack's entities, has a letter or a digit."""
    rest = ENTITY.sub(" ", MENTION.sub(" ", text))
    return any(unicodedata.category(ch)[0] in "LN" for ch in rest)


def test_a_reply_in_a_bot_thread_refines_it_or_is_ignored(app: App) -> None:
    outcomes: Counter[str] = Counter()

    @settings(RUN, max_examples=N_REPLIES)
    @given(text=slack_texts, user=st.sampled_from([ALICE, BOB]))
    def prop(text: str, user: str) -> None:
        fake = app.fake
        before = len(fake.messages(GENERAL, app.root))
        message = fake.post_as_user(GENERAL, text, user, app.root)
        status = app.rig.driver.event(app.rig.driver.message_event(message, GENERAL)).status
        if has_words(text):  # a person asked for a change: a new result or a clear error arrives
            wait_for(lambda: len(bot_replies(fake, app.root, before)) >= 1, timeout=30)
            outcomes["refined"] += 1
        elif not text.strip():
            settle(fake, quiet=0.15, timeout=20.0)
            assert bot_replies(fake, app.root, before) == [], "an empty reply starts no turn"
            outcomes["ignored"] += 1
        clean_after(app, "thread reply", status)

    prop()
    COUNTS.update({f"thread reply, {kind}": n for kind, n in outcomes.items()})
    assert outcomes["refined"] >= 5 and outcomes["ignored"] >= 1, outcomes


def bot_replies(fake: FakeSlackApi, root: str, after: int) -> list[Json]:
    """Finished bot replies (result or error) in a thread after the first `after` messages."""
    return [
        m
        for m in fake.messages(GENERAL, root)[after:]
        if m.get("bot_id") and ("result_actions" in block_ids(m) or ":x:" in _text(m))
    ]


def test_a_mention_always_gets_a_reply_in_its_thread(app: App) -> None:
    @settings(RUN, max_examples=N_MENTIONS)
    @given(text=slack_texts)
    def prop(text: str) -> None:
        fake = app.fake
        message = app.rig.driver.user_mentions_bot(GENERAL, text, BOB)
        ts = str(message["ts"])
        wait_for(lambda: [m for m in fake.messages(GENERAL, ts)[1:] if m.get("bot_id")], timeout=20)
        wait_for(lambda: finished(fake, GENERAL, ts) or helped(fake, ts), timeout=30)
        clean_after(app, "mention", 200)

    prop()


def helped(fake: FakeSlackApi, ts: str) -> bool:
    """True when the bot answered a mention with help or a flag error (no thread to finish)."""
    return any("How to use" in _text(m) or ":warning:" in _text(m) for m in fake.messages(GENERAL, ts)[1:])


# --- event envelopes ---------------------------------------------------------------------------------------
USERS = st.sampled_from([ALICE, BOB, "U0NOBODY", "", "U0BOT"])
CHANNELS = st.sampled_from([GENERAL, RANDOM, PRIVATE, ALICE_DM, "C0NOPE", "D0NOPE", ""])


def test_any_event_envelope_is_answered_without_a_5xx_or_an_error(app: App) -> None:
    def ts_values() -> st.SearchStrategy[Any]:
        real = st.sampled_from([app.root, app.avatar_root, app.result_ts, app.candidates_ts])
        return real | st.sampled_from(["1.000001", "", "0", "nan", "9" * 40]) | st.floats().map(str) | junk

    event = st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["message", "app_mention", "reaction_added", "reaction_removed", "app_home_opened",
                 "member_joined_channel", "pin_added", ""]
            ) | junk,
        },
        optional={
            "user": USERS | junk,
            "channel": CHANNELS | junk,
            "ts": ts_values(),
            "thread_ts": ts_values(),
            "event_ts": ts_values(),
            "text": slack_texts | huge | junk,
            "subtype": st.sampled_from(["bot_message", "message_changed", "thread_broadcast", "me_message"])
            | junk,
            "bot_id": st.sampled_from(["B0BOT", "B0OTHER"]) | junk,
            "channel_type": st.sampled_from(["channel", "group", "im", "mpim", "app_home"]) | junk,
            "reaction": st.sampled_from(["one", "two", "nine", "thumbsup", "one::skin-tone-2", ""]) | junk,
            "item": st.fixed_dictionaries(
                {}, optional={"type": st.just("message") | junk, "channel": CHANNELS, "ts": ts_values()}
            )
            | junk,
            "tab": st.sampled_from(["home", "messages", "about"]) | junk,
            "view": junk,
            "blocks": junk,
        },
    )  # fmt: skip
    envelope = st.fixed_dictionaries(
        {"type": st.just("event_callback"), "event": event},
        optional={
            "team_id": st.just(TEAM) | junk,
            "api_app_id": st.just(APP_ID) | junk,
            "event_time": st.integers() | junk,
            "authorizations": st.just([{"team_id": TEAM, "user_id": "U0BOT", "is_bot": True}]) | junk,
            "token": st.text(max_size=20),
        },
    )

    @settings(RUN, max_examples=N_EVENTS)
    @given(body=envelope, event_id=st.booleans() | junk)
    def prop(body: Json, event_id: Any) -> None:
        body["event_id"] = f"EvProp{next(app.ids)}" if event_id is True else event_id
        clean_after(app, "event envelope", signed_json(app, body))

    prop()


# --- buttons -----------------------------------------------------------------------------------------------
def test_any_button_click_is_answered_and_a_well_formed_one_is_answered_visibly(app: App) -> None:
    threads = st.sampled_from(app.thread_ids())
    numbers = st.sampled_from([*app.turns, 1, 2, 6, 9, 0, -1, 2**31, 10**20])
    retry_specs = st.fixed_dictionaries(
        {
            "op": st.sampled_from(
                ["start", "avatar", "refine", "use_hit", "pick", "vary", "reroll", "edit", "x"]
            )
        },
        optional={"text": slack_texts, "n": st.integers(-2, 12) | junk, "negative": st.text(max_size=20)},
    ).map(json.dumps)
    values = st.one_of(
        st.builds(lambda t, n: f"{t}:{n}", threads, numbers),
        threads.map(str),
        retry_specs,
        st.text(max_size=40),
        huge,
    )
    clicks = st.fixed_dictionaries(
        {
            "action_id": st.sampled_from(ACTIONS),
            "value": values,
            "user": st.sampled_from([ALICE, BOB]),
            "at": st.sampled_from(["result", "hits", "candidates", "root"]),
        }
    )
    malformed = st.fixed_dictionaries(
        {"type": st.just("block_actions")},
        optional={
            "user": st.fixed_dictionaries({"id": USERS}) | junk,
            "team": st.just({"id": TEAM}) | junk,
            "container": st.fixed_dictionaries(
                {}, optional={"message_ts": st.text(max_size=12) | junk, "channel_id": CHANNELS | junk}
            )
            | junk,
            "channel": st.fixed_dictionaries({"id": CHANNELS}) | junk,
            "message": junk,
            "trigger_id": st.text(max_size=20) | junk,
            "actions": st.lists(
                st.fixed_dictionaries(
                    {}, optional={"action_id": st.sampled_from(ACTIONS) | junk, "value": values | junk}
                )
                | junk,
                max_size=3,
            )
            | junk,
        },
    )
    outcomes: Counter[str] = Counter()

    @settings(RUN, max_examples=N_CLICKS // 2)
    @given(click=malformed)
    def prop_malformed(click: Json) -> None:
        status, _ = signed_payload(app, click)  # any status below 500, nothing logged
        outcomes["malformed"] += 1
        clean_after(app, "button click", status)

    @settings(RUN, max_examples=N_CLICKS)
    @given(click=clicks)
    def prop(click: Json) -> None:
        fake, user, action_id, value = app.fake, click["user"], click["action_id"], click["value"]
        ts = {"result": app.result_ts, "hits": app.hits_ts, "candidates": app.candidates_ts}.get(
            click["at"], app.root
        )
        root = app.avatar_root if click["at"] == "candidates" else app.root
        before = Seen.now(fake, user)
        payload = click_payload(fake, action_id, value, user, ts, root)
        status, body = signed_payload(app, payload)
        assert status == 200 and not body, (status, body[:200])
        if expects_answer(app, action_id, value, user, ts):
            assert before.answered(fake, user), "a well-formed click got no lasting answer"
            outcomes["answered"] += 1
        clean_after(app, "button click", status)

    prop_malformed()
    prop()
    COUNTS.update({f"button click, {kind}": n for kind, n in outcomes.items()})
    assert outcomes["answered"] >= 10 and outcomes["malformed"] >= 10, outcomes


def click_payload(fake: FakeSlackApi, action_id: str, value: str, user: str, ts: str, root: str) -> Json:
    """A block_actions payload as Slack sends it for a click on a message in a #general thread."""
    action = {"action_id": action_id, "block_id": "b", "type": "button", "value": value, "action_ts": "1.0"}
    container = {"type": "message", "message_ts": ts, "channel_id": GENERAL, "is_ephemeral": False}
    if ts != root:
        container["thread_ts"] = root
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": TEAM},
        "api_app_id": APP_ID,
        "token": "sandbox-verification-token",
        "trigger_id": fake.issue_trigger(user),
        "team": {"id": TEAM, "domain": "sandbox"},
        "container": container,
        "channel": {"id": GENERAL, "name": "general"},
        "message": fake.message(GENERAL, ts),
        "response_url": fake.new_response_url(GENERAL, user, ts, root),
        "actions": [action],
        "state": {"values": {}},
    }


def expects_answer(app: App, action_id: str, value: str, user: str, ts: str) -> bool:
    """Whether the clicker must see something. Exempt by design: a click identical to an earlier one (the
    once-only guard drops double clicks; test_a_second_identical_click_after_a_failure_is_not_silent shows
    where that goes too far) and a second Retry on one message (the first one removed the message)."""
    if action_id == ACTION_RETRY:
        first = ts not in app.retried
        app.retried.add(ts)
        return first
    key = f"{action_id}:{value}:{user}"
    first = key not in app.clicks
    app.clicks.add(key)
    return first


def test_a_second_identical_click_after_a_failure_is_not_silent(app: App) -> None:
    fake, value = app.fake, f"{app.thread}:77"
    before = Seen.now(fake, ALICE)
    payload = click_payload(fake, ACTION_USE_HIT, value, ALICE, app.hits_ts, app.root)
    assert signed_payload(app, payload)[0] == 200
    settle(fake, quiet=0.5)
    if not before.changed(fake, ALICE):
        raise RuntimeError("the first press must answer (an error in the thread)")
    again = Seen.now(fake, ALICE)
    payload = click_payload(fake, ACTION_USE_HIT, value, ALICE, app.hits_ts, app.root)
    assert signed_payload(app, payload)[0] == 200
    settle(fake, quiet=0.5)
    assert again.changed(fake, ALICE), "the second press of a failed button got no answer at all"


# --- modal submissions -------------------------------------------------------------------------------------
def test_any_view_submission_gets_a_valid_ack(app: App) -> None:
    text_state = st.fixed_dictionaries({"type": st.just("plain_text_input"), "value": slack_texts | junk})
    select_state = st.fixed_dictionaries(
        {"type": st.just("static_select"), "selected_option": st.fixed_dictionaries({"value": st.sampled_from(
            [*ASPECT_RATIOS, "none", "7:3", ""])}) | junk}
    )  # fmt: skip
    known = st.fixed_dictionaries(
        {},
        optional={
            modals.PROMPT_BLOCK: st.fixed_dictionaries({modals.PROMPT_INPUT: text_state}),
            modals.NEGATIVE_BLOCK: st.fixed_dictionaries({modals.NEGATIVE_INPUT: text_state}),
            modals.RATIO_BLOCK: st.fixed_dictionaries({modals.RATIO_INPUT: select_state}),
            modals.STYLE_BLOCK: st.fixed_dictionaries({modals.STYLE_INPUT: text_state}),
            modals.MODEL_BLOCK: st.fixed_dictionaries({modals.MODEL_INPUT: text_state}),
        },
    )
    metadata = st.sampled_from([str(t) for t in app.thread_ids()] + [GENERAL, RANDOM, "", "C0NOPE"])
    view = st.fixed_dictionaries(
        {"type": st.just("modal"), "callback_id": st.sampled_from(VIEWS) | st.text(max_size=10)},
        optional={
            "state": st.fixed_dictionaries({"values": known | junk}) | junk,
            "private_metadata": metadata | st.text(max_size=20) | huge | junk,
            "id": st.text(max_size=10),
            "team_id": st.just(TEAM) | junk,
        },
    )
    payload = st.fixed_dictionaries(
        {"type": st.just("view_submission"), "view": view},
        optional={
            "user": st.fixed_dictionaries({"id": USERS}, optional={"team_id": st.just(TEAM)}) | junk,
            "team": st.just({"id": TEAM}) | junk,
            "trigger_id": st.text(max_size=10),
        },
    )

    @settings(RUN, max_examples=N_VIEWS)
    @given(body=payload)
    def prop(body: Json) -> None:
        status, answer = signed_payload(app, body)
        if status == 200 and answer:
            reply = json.loads(answer)  # the ack of a submission is empty or a response_action
            assert reply.get("response_action") in ("errors", "update", "push", "clear"), answer[:200]
            if reply["response_action"] == "errors":
                errors = reply["errors"]
                assert errors and all(isinstance(k, str) and str(v).strip() for k, v in errors.items())
        clean_after(app, "view submission", status)

    prop()


def test_an_edit_prompt_submission_draws_or_says_why_not(app: App) -> None:
    outcomes: Counter[str] = Counter()

    @settings(RUN, max_examples=N_EDITS)
    @given(prompt=slack_texts, negative=st.text(max_size=40), user=st.sampled_from([ALICE, BOB]))
    def prop(prompt: str, negative: str, user: str) -> None:
        fake = app.fake
        before = len(fake.messages(GENERAL, app.root))
        values = {
            modals.PROMPT_BLOCK: {modals.PROMPT_INPUT: {"type": "plain_text_input", "value": prompt}},
            modals.NEGATIVE_BLOCK: {modals.NEGATIVE_INPUT: {"type": "plain_text_input", "value": negative}},
        }
        answer = app.rig.driver.view_submission(VIEW_EDIT_PROMPT, values, str(app.thread), user)
        assert answer.status == 200
        if answer.body:  # the modal stays open with a message on the prompt field
            assert answer.json()["errors"][modals.PROMPT_BLOCK].strip()
            assert not b.clean(prompt).strip(), repr(prompt)
            outcomes["field error"] += 1
        else:
            wait_for(lambda: bot_replies(fake, app.root, before), timeout=30)
            outcomes["drawn"] += 1
        clean_after(app, "edit submission", answer.status)

    prop()
    COUNTS.update({f"edit submission, {kind}": n for kind, n in outcomes.items()})
    assert outcomes["drawn"] >= 5, outcomes


# --- raw bodies --------------------------------------------------------------------------------------------
def test_any_signed_body_is_answered_below_500(app: App) -> None:
    forms = st.dictionaries(
        st.sampled_from(["payload", "command", "text", "team_id", "x"]), st.text(max_size=40)
    )
    bodies = st.one_of(
        st.binary(max_size=2_000),
        junk.map(lambda j: json.dumps(j).encode()),
        forms.map(lambda f: urlencode(f).encode()),
        junk.map(lambda j: urlencode({"payload": json.dumps(j)}).encode()),
        st.integers(1_000_000, 3_000_000).map(lambda n: b'{"type":"event_callback","x":"' + b"a" * n + b'"}'),
    )
    types = st.sampled_from(["application/json", FORM, "text/plain", "", "application/json; charset=latin-1"])

    @settings(RUN, max_examples=N_RAW)
    @given(body=bodies, content_type=types)
    def prop(body: bytes, content_type: str) -> None:
        try:
            status = app.rig.driver.post_raw(body, content_type, kind="raw:prop").status
        except (urllib.error.URLError, ConnectionError):
            # over the cap the guard answers 413 without reading the body and closes the connection, so
            # the sender may see the reset before the answer; anything smaller must get an answer
            assert len(body) > MAX_BODY_BYTES
            status = 413
        if len(body) > MAX_BODY_BYTES:
            assert status == 413
        clean_after(app, "raw body", status)

    prop()


def parsed(body: bytes) -> Any:
    """The payload a raw body carries (JSON, or a form's `payload` field), or None."""
    try:
        text = body.decode("utf-8")
        if text.startswith("{"):
            return json.loads(text)
        return json.loads(parse_qs(text)["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        return None


# --- pure functions: flags ---------------------------------------------------------------------------------
@settings(RUN, max_examples=N_PURE)
@given(text=slack_texts | huge, avatar=st.booleans())
def test_parse_imagine_raises_only_option_errors_and_keeps_ideas_short(text: str, avatar: bool) -> None:
    try:
        command = parse_imagine(text, avatar=avatar)
    except OptionError as error:
        assert 0 < len(str(error)) < 600 and "\n" not in str(error)
    else:
        assert len(command.idea) <= MAX_IDEA_CHARS and command.idea == command.idea.strip()
        low, high = (2, MAX_CANDIDATES) if command.avatar else (1, MAX_IMAGES)
        assert low <= command.options.count <= high and command.avatar >= avatar
        assert command.options.seed is None or 0 <= command.options.seed <= MAX_SEED
        assert command.options.aspect_ratio in (None, *ASPECT_RATIOS)
    COUNTS["parse_imagine"] = COUNTS.get("parse_imagine", 0) + 1


def retried(command: ImagineCommand) -> ImagineCommand:
    """What on_retry (slack/handlers/retry_button.py) parses back from the Retry value begin() stores with
    a failed start or brainstorm (slack/handlers/thread_start.py)."""
    return parse_imagine(retry_text(command), avatar=command.avatar)


def same_after_retry(command: ImagineCommand) -> bool:
    """A retried start draws the same idea with the same flags; a retried brainstorm the same theme and
    number of candidates (the only flag a brainstorm uses)."""
    again = retried(command)
    if command.avatar:
        return (again.idea, again.options.count, again.avatar) == (command.idea, command.options.count, True)
    return (again.idea, again.options, again.model) == (command.idea, command.options, command.model)


plain_words = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=10)
idea_words = plain_words.filter(lambda w: w.lower() != "help")


@st.composite
def well_formed(draw: st.DrawFn) -> tuple[str, TurnOptions, str | None, bool]:
    """Idea words and flags rendered the way people type them, with the values they stand for."""
    idea = draw(st.lists(idea_words, min_size=1, max_size=8))
    ratio = draw(st.none() | st.sampled_from(ASPECT_RATIOS))
    seed = draw(st.none() | st.integers(0, MAX_SEED))
    negative = draw(st.lists(st.lists(plain_words, min_size=1, max_size=3).map(" ".join), max_size=3))
    style = draw(st.none() | st.lists(plain_words, min_size=1, max_size=3).map(" ".join))
    avatar = draw(st.booleans())
    given_n = draw(st.none() | (st.integers(2, MAX_CANDIDATES) if avatar else st.integers(1, MAX_IMAGES)))
    count = given_n if given_n is not None else (AVATAR_DEFAULT if avatar else 1)
    model = draw(
        st.none() | st.sampled_from([*MODEL_ALIASES, "bedrock:amazon.nova-canvas-v1:0", "sagemaker:ep1"])
    )
    dash = st.sampled_from(["--", "\u2014", "\u2013"])
    flags = []
    flags += [f"{draw(dash)}ar {ratio.replace(':', draw(st.sampled_from([':', 'x'])))}"] if ratio else []
    flags += (
        [f"{draw(dash)}seed={seed}" if draw(st.booleans()) else f"--seed {seed}"] if seed is not None else []
    )
    flags += [f"--no {', '.join(negative)}"] if negative else []
    flags += [f'--style "{style}"' if " " in style else f"--style {style}"] if style else []
    flags += [f"{draw(dash)}n {given_n}"] if given_n is not None else []
    flags += [f"--model {model}"] if model else []
    flags += ["--avatar"] if avatar else []
    order = draw(st.permutations(flags))
    text = " ".join([*idea, *order])
    options = TurnOptions(ratio, seed, tuple(negative), style, count)
    return text, options, MODEL_ALIASES.get(model, model) if model else None, avatar


@settings(RUN, max_examples=N_PURE)
@given(case=well_formed())
def test_well_formed_flags_round_trip(case: tuple[str, TurnOptions, str | None, bool]) -> None:
    text, options, model, avatar = case
    command = parse_imagine(text)
    assert command.options == options and command.model == model and command.avatar == avatar
    assert same_after_retry(command), retried(command)
    COUNTS["flag round trip"] = COUNTS.get("flag round trip", 0) + 1


@settings(RUN, max_examples=N_PURE)
@given(
    idea=slack_texts,
    options_text=st.lists(flag_tokens(), max_size=5).map(" ".join),
    avatar=st.booleans(),
)
def test_the_retry_of_any_accepted_command_parses_to_the_same_command(
    idea: str, options_text: str, avatar: bool
) -> None:
    try:
        command = parse_imagine(f"{idea} {options_text}", avatar=avatar)
    except OptionError:
        return
    assume(command.idea and not ENTITY.search(command.idea))  # entities: see the retried-start test below
    assert same_after_retry(command), retried(command)
    COUNTS["retry round trip"] = COUNTS.get("retry round trip", 0) + 1


def test_a_retried_start_keeps_an_idea_with_slack_entities() -> None:
    command = parse_imagine("a sign that says &amp;lt;b&amp;gt; --ar 3:2")  # what Slack sends
    assert command.idea == "a sign that says &lt;b&gt;"
    assert retried(command).idea == command.idea, retried(command).idea


# --- pure functions: Block Kit builders --------------------------------------------------------------------
any_text = st.text(max_size=300) | slack_texts | huge
ids = st.integers(0, 2**31 - 1)


def result_of(prompt: str, negative: str, style: str, model: str, images: int) -> TurnResult:
    """A finished turn whose every user-influenced field is arbitrary text."""
    thread = Thread(7, ThreadRef("T1", "C1", "1.2"), "U1", "imagine", prompt[:50], datetime.now(UTC))
    params = {"aspect_ratio": "3:2", "seed": 5, "style": style}
    turn = replace(Turn(7, "start", "user", prompt, [], prompt, negative, params, model, model), id=42)
    stored = tuple(
        StoredImage(Path(f"/img/{n}.png"), ImageRecord(f"sha{n}", n, model, 1216, 832, "p"))
        for n in range(images)
    )
    return TurnResult(
        thread, turn, (), (PromptDraft(prompt, style=style),), stored, False, False, labels=(model,)
    )


@settings(RUN, max_examples=N_PURE // 3)
@given(
    text=any_text,
    other=any_text,
    short=st.text(max_size=60),
    thread=ids,
    n=st.integers(0, 12),
    user=st.sampled_from(["U0ALICE", "<!channel>", "", "U" + "9" * 40]),
)
def test_block_builders_stay_within_slack_limits_for_any_text(
    text: str, other: str, short: str, thread: int, n: int, user: str
) -> None:
    messages = [
        b.thread_root(text, user, other),
        b.error_message(text),
        b.error_message(short, retry_value=short or None),
        b.option_error(text),
        b.working_status(short),
        b.hits_message(thread, [HitForPrompt(i, text, other[:50] or None) for i in range(1, n + 1)]),
        b.result_message(thread, result_of(text, other, short, short, min(n, 4))),
        b.not_in_channel(short, text),
        b.winner_message(max(1, min(n, 9)), {i: i for i in range(1, 10)}),
    ]
    if n:
        drafts = [PromptDraft(text if i % 2 else other, style=short) for i in range(n)]
        messages.append(b.brainstorm_message(thread, drafts, (short,) if short else ()))
    for message in messages:
        check_message(message)
    check_modal(modals.edit_prompt_modal(thread, text, other))
    defaults = UserDefaults(short or None, text[:100] or None, other or None, short or None)
    check_modal(modals.settings_modal(defaults, VIEW_USER_DEFAULTS))
    check_modal(modals.settings_modal(defaults, VIEW_CHANNEL_DEFAULTS, short or "C1"))
    images = [home.HomeImage(text, i, f"https://x.slack.com/archives/C1/p{i}", short) for i in range(n)]
    saved = [SavedPromptRecord(i, "T1", "U1", other, text) for i in range(n)]
    check_home(home.home_view(images, saved, defaults))
    COUNTS["block builders"] = COUNTS.get("block builders", 0) + 1


# --- inputs that once broke the app (fixed): exact inputs ---------------------------------------------
def judged(app: App, status: int) -> tuple[int, list[str]]:
    """The status and the error records of one request, once its lazy listeners are done."""
    settle(app.fake, quiet=0.15, timeout=20.0)
    found, app.problems.found[:] = list(app.problems.found), []
    return status, [line.splitlines()[0] + " | " + line.splitlines()[-1] for line in found]


CLICK = {"type": "block_actions", "user": {"id": ALICE}, "team": {"id": TEAM}, "trigger_id": "1.2.3"}
SETTINGS_STATE = {"state": {"values": {}}, "type": "modal"}
OPEN_SETTINGS = {"action_id": ACTION_OPEN_DEFAULTS}


@pytest.mark.parametrize("actions", [[{}], [{"value": "1:1", "block_id": "b"}]])
def test_an_action_without_action_id_is_not_a_500(app: App, actions: list[Json]) -> None:
    status, errors = judged(app, signed_payload(app, {**CLICK, "actions": actions})[0])
    assert status < 500 and errors == [], (status, errors)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({**CLICK, "user": ALICE, "actions": [OPEN_SETTINGS]}, id="click-user"),
        pytest.param({**CLICK, "team": TEAM, "actions": [OPEN_SETTINGS]}, id="click-team"),
        pytest.param(
            {"type": "view_submission", "user": ALICE, "team": {"id": TEAM},
             "view": {"callback_id": VIEW_USER_DEFAULTS, **SETTINGS_STATE}},
            id="settings-user",
        ),
        pytest.param(
            {"type": "view_submission", "user": ALICE, "team": {"id": TEAM},
             "view": {"callback_id": VIEW_CHANNEL_DEFAULTS, "private_metadata": GENERAL, **SETTINGS_STATE}},
            id="channel-settings-user",
        ),
        pytest.param(
            {"type": "event_callback", "team": TEAM, "event_id": "EvKnownHome",
             "event": {"type": "app_home_opened", "user": ALICE, "tab": "home"}},
            id="home-team",
        ),
    ],
)  # fmt: skip
def test_a_string_user_or_team_does_not_break_home_and_settings(app: App, payload: Json) -> None:
    if payload["type"] == "event_callback":
        status = signed_json(app, payload)
    else:
        status = signed_payload(app, payload)[0]
    answer, errors = judged(app, status)
    assert answer < 500 and errors == [], (answer, errors)


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"authorizations": False}, id="authorizations-bool"),
        pytest.param({"authorizations": [1]}, id="authorizations-of-numbers"),
        pytest.param({"enterprise": 5}, id="enterprise-number"),
        pytest.param({"channel": 5}, id="channel-number"),
        pytest.param({"event": {"type": "message", "channel": 5}}, id="event-channel-number"),
        pytest.param(
            {"event": {"type": "reaction_added", "user": ALICE, "item": {"type": "message", "channel": 5}}},
            id="item-channel-number",
        ),
    ],
)
def test_fields_bolt_cannot_read_are_refused_without_errors(app: App, fields: Json) -> None:
    envelope = {
        "type": "event_callback",
        "team_id": TEAM,
        "event_id": "EvKnown",
        "event": {"type": "message"},
    }
    status = signed_json(app, {**envelope, **fields})
    assert judged(app, status) == (400, [])


def test_an_edit_submission_with_a_huge_thread_id_is_not_a_500(app: App) -> None:
    view = {"type": "modal", "callback_id": VIEW_EDIT_PROMPT, "private_metadata": "9" * 4301}
    status, errors = judged(app, signed_payload(app, {"type": "view_submission", "view": view})[0])
    assert status < 500 and errors == [], (status, errors)


def test_zz_counts() -> None:
    """How many inputs each property tried in this run (for RELIABILITY.md; shown with -s)."""
    line = ", ".join(f"{name}: {count}" for name, count in sorted(COUNTS.items()))
    sys.stderr.write(f"property examples: {line}\n")
    assert all(count > 0 for count in COUNTS.values())
