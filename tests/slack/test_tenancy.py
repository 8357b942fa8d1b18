"""Tenancy: two workspaces on one app and one database; nothing of team A is visible to or changeable by B.

The app runs in multi-workspace (OAuth) mode, the one way one process serves two Slack teams: each team
installs it through /slack/install, Bolt picks the installing team's bot token for each request, and every
store query is scoped by the team id. Team A works in #general (a thread, an avatar brainstorm with votes,
a saved prompt, user and channel defaults). Team B then replays A's thread ids, turn ids, channel and
message ts in every command, reply, reaction, button, modal and the Home tab, and the test checks both
what B's workspace shows (an "out of date" note or nothing, never A's words) and A's storage (no new
turn, vote, saved prompt or default). Slack ids are team-scoped in the sandbox, so B's bot token cannot
post into A's channels either.
"""

from __future__ import annotations

import html
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydantic import SecretStr

from bot.engine.ports import ThreadRef, UserDefaults
from bot.slack.ids import (
    ACTION_DESCRIBE,
    ACTION_EDIT_PROMPT,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_OPEN_DEFAULTS,
    ACTION_PICK_WINNER,
    ACTION_REMOVE_BACKGROUND,
    ACTION_REROLL,
    ACTION_RETRY,
    ACTION_SAVE_PROMPT,
    ACTION_UPSCALE,
    ACTION_USE_HIT,
    ACTION_USE_SKETCH,
    ACTION_VARY,
    ACTION_VOTE,
    COMMAND_AVATAR,
    COMMAND_IMAGINE,
    VIEW_CHANNEL_DEFAULTS,
    VIEW_EDIT_PROMPT,
    VIEW_USER_DEFAULTS,
)
from bot.slack.reply.modal_views import (
    DEFAULT_NEGATIVE_BLOCK,
    DEFAULT_NEGATIVE_INPUT,
    MODEL_BLOCK,
    MODEL_INPUT,
    NEGATIVE_BLOCK,
    NEGATIVE_INPUT,
    PROMPT_BLOCK,
    PROMPT_INPUT,
    RATIO_BLOCK,
    RATIO_INPUT,
    STYLE_BLOCK,
    STYLE_INPUT,
)
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.slack.slack_rig import (
    SECRET,
    TEAM,
    Json,
    Rig,
    block_ids,
    button_value,
    hits_of,
    results,
    serve,
    settle,
    wait_for,
)

TEAM_A, TEAM_B = TEAM, "T0002"
CAROL_B, DAVE_B, GENERAL_B = "U2CAROL", "U2DAVE", "C2GENERAL"
CLIENT_ID, CLIENT_SECRET = "1111.2222", "sandbox-client-secret"
OAUTH = {"bot_token": None, "client_id": CLIENT_ID, "client_secret": SecretStr(CLIENT_SECRET)}
# Words only team A's work contains (the idea, the user's and the channel's styles, a negative prompt).
IDEA_A, STYLE_A, CHANNEL_STYLE_A, NEGATIVE_A = (
    "Quillon the lighthouse keeper",
    "Vermiglio ink",
    "Zanzibar",
    "Oxblood",
)
A_WORDS = ("Quillon", "Vermiglio", "Zanzibar", "Oxblood")
OUT_OF_DATE = "out of date"


@dataclass
class World:
    """Two installed workspaces, their drivers, and team A's work (ids B will try to use)."""

    fake: FakeSlackApi
    rig: Rig
    a: SlackDriver
    b: SlackDriver
    root_a: str
    result_a: Json
    hits_a: Json
    thread_a: int
    turn_a: int
    avatar_a: str
    candidates_a: Json
    avatar_thread_a: int
    root_b: str
    result_b: Json
    thread_b: int


# --- set-up ------------------------------------------------------------------------------------------------
def install(rig: Rig, fake: FakeSlackApi, team: str, user: str) -> None:
    """`user` installs the app into `team`: /slack/install, Slack's consent, /slack/oauth_redirect."""
    parts = urlsplit(rig.driver.events_url)
    base = f"{parts.scheme}://{parts.netloc}"
    with urllib.request.urlopen(base + "/slack/install", timeout=10) as page:
        body, cookie = page.read().decode(), page.headers["Set-Cookie"].split(";")[0]
    found = re.search(r'<a href="([^"]+)"', body)
    assert found is not None
    state = parse_qs(urlsplit(html.unescape(found.group(1))).query)["state"][0]
    query = urlencode({"code": fake.oauth_code(team, user), "state": state})
    request = urllib.request.Request(f"{base}/slack/oauth_redirect?{query}", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as done:
        assert done.status == 200 and "Thank you!" in done.read().decode()


def text_of(item: Any) -> str:
    """Anything as searchable text."""
    return json.dumps(item, ensure_ascii=False, default=str)


def newest_root(fake: FakeSlackApi, channel: str, words: str) -> str:
    """The ts of the newest top-level message in `channel` that shows `words`."""
    found = wait_for(lambda: [m for m in fake.messages(channel) if words in text_of(m)])
    return str(found[-1]["ts"])


def results_in(fake: FakeSlackApi, channel: str, root_ts: str) -> list[Json]:
    """Result messages (with the Re-roll row) in a thread of any channel."""
    return [m for m in fake.messages(channel, root_ts) if "result_actions" in block_ids(m)]


def thread_id(rig: Rig, team: str, channel: str, ts: str) -> int:
    """The stored id of a Slack thread."""
    record = rig.services.threads.find_thread_by_ref(ThreadRef(team, channel, ts))
    assert record is not None
    return record.id


def defaults_values(ratio: str, style: str, negative: str = "") -> Json:
    """view.state.values of a defaults modal."""
    return {
        RATIO_BLOCK: {RATIO_INPUT: {"type": "static_select", "selected_option": {"value": ratio}}},
        STYLE_BLOCK: {STYLE_INPUT: {"type": "plain_text_input", "value": style}},
        DEFAULT_NEGATIVE_BLOCK: {DEFAULT_NEGATIVE_INPUT: {"type": "plain_text_input", "value": negative}},
        MODEL_BLOCK: {MODEL_INPUT: {"type": "plain_text_input", "value": None}},
    }


def edit_values(prompt: str) -> Json:
    """view.state.values of the Edit prompt modal."""
    return {
        PROMPT_BLOCK: {PROMPT_INPUT: {"type": "plain_text_input", "value": prompt}},
        NEGATIVE_BLOCK: {NEGATIVE_INPUT: {"type": "plain_text_input", "value": ""}},
    }


@pytest.fixture(scope="module")
def world(retriever: Retriever, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Both teams installed; A has a thread, a brainstorm with votes, a saved prompt and defaults."""
    folder = tmp_path_factory.mktemp("tenancy")
    with pytest.MonkeyPatch.context() as patch, FakeSlackApi() as fake:
        for name in [n for n in os.environ if n.startswith(("IMAGINE_", "AWS_", "SLACK_"))]:
            patch.delenv(name)
        fake.register_oauth_client(CLIENT_ID, CLIENT_SECRET)
        fake.add_team(TEAM_B, "Second")
        fake.add_user(CAROL_B, "carol", team_id=TEAM_B)
        fake.add_user(DAVE_B, "dave", team_id=TEAM_B)
        fake.add_channel(GENERAL_B, "general", "public", [CAROL_B, DAVE_B], team_id=TEAM_B)
        with serve(fake, retriever, folder, slack=OAUTH) as rig:
            install(rig, fake, TEAM_A, ALICE)
            install(rig, fake, TEAM_B, CAROL_B)
            a, b = rig.driver, SlackDriver(rig.driver.events_url, SECRET, fake, team_id=TEAM_B)
            yield build_world(fake, rig, a, b)


def build_world(fake: FakeSlackApi, rig: Rig, a: SlackDriver, b: SlackDriver) -> World:
    """Team A's work, then team B's own thread (B's buttons work for B: the checks are not vacuous)."""
    assert a.slash_command(COMMAND_IMAGINE, f"{IDEA_A} --no {NEGATIVE_A}", ALICE, GENERAL).status == 200
    root_a = newest_root(fake, GENERAL, "Quillon")
    [result_a] = wait_for(lambda: results(fake, root_a))
    turn_a = int(button_value(result_a, ACTION_REROLL).split(":")[1])
    assert a.block_action(ACTION_SAVE_PROMPT, button_value(result_a, ACTION_SAVE_PROMPT), ALICE, GENERAL,
                          result_a["ts"]).status == 200  # fmt: skip
    assert a.slash_command(COMMAND_AVATAR, "Quillon robots", ALICE, GENERAL).status == 200
    avatar_a = newest_root(fake, GENERAL, "Quillon robots")
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, avatar_a) if "brainstorm_actions" in block_ids(m)]
    )
    a.user_reacts(GENERAL, str(candidates["ts"]), "two", BOB)
    a.view_submission(VIEW_USER_DEFAULTS, defaults_values("16:9", STYLE_A), user=ALICE)
    rig.services.defaults.set_channel_defaults(TEAM_A, GENERAL, UserDefaults(style=CHANNEL_STYLE_A))
    avatar_thread = thread_id(rig, TEAM_A, GENERAL, avatar_a)
    wait_for(lambda: rig.services.feedback.tally(TEAM_A, avatar_thread) == {2: 1})
    wait_for(lambda: rig.services.defaults.saved_prompts(TEAM_A, ALICE))
    wait_for(lambda: rig.services.defaults.user_defaults(TEAM_A, ALICE).style == STYLE_A)

    assert b.slash_command(COMMAND_IMAGINE, "a blue whale", CAROL_B, GENERAL_B).status == 200
    root_b = newest_root(fake, GENERAL_B, "a blue whale")
    [result_b] = wait_for(lambda: results_in(fake, GENERAL_B, root_b))
    settle(fake)
    return World(
        fake,
        rig,
        a,
        b,
        root_a,
        result_a,
        hits_of(fake, root_a)[0],
        thread_id(rig, TEAM_A, GENERAL, root_a),
        turn_a,
        avatar_a,
        candidates,
        avatar_thread,
        root_b,
        result_b,
        thread_id(rig, TEAM_B, GENERAL_B, root_b),
    )


# --- what each side has and sees ---------------------------------------------------------------------------
def a_storage(w: World) -> Json:
    """Everything team A keeps: turns, votes, feedback-bearing turns, saved prompts, defaults."""
    services = w.rig.services
    turns = {
        t: [turn.id for turn in services.threads.turns(TEAM_A, t)] for t in (w.thread_a, w.avatar_thread_a)
    }
    return {
        "turns": turns,
        "tally": services.feedback.tally(TEAM_A, w.avatar_thread_a),
        "saved": {u: [s.prompt for s in services.defaults.saved_prompts(TEAM_A, u)] for u in (ALICE, BOB)},
        "defaults": {u: services.defaults.user_defaults(TEAM_A, u) for u in (ALICE, BOB)},
        "channel": services.defaults.channel_defaults(TEAM_A, GENERAL),
        "recent": [i.prompt for i in services.recent.recent_images(TEAM_A, ALICE)],
    }


def people(fake: FakeSlackApi, team: str) -> set[str]:
    """The members of a team (bot users included)."""
    with fake.state() as ws:
        return {u for u, user in ws.users.items() if user.team_id == team}


def a_workspace(w: World) -> Json:
    """What team A's people can see: #general with its threads, their ephemerals and views."""
    members = people(w.fake, TEAM_A)
    return {
        "general": [m["ts"] for m in w.fake.messages(GENERAL, include_replies=True)],
        "ephemerals": [e for e in w.fake.ephemerals() if e["user"] in members],
        "views": [v for v in w.fake.views() if v.get("team_id") == TEAM_A],
    }


def seen_by_b(w: World) -> str:
    """Everything team B's workspace shows or was sent: its channels' messages, its people's ephemerals,
    its views and its response_url posts."""
    members = people(w.fake, TEAM_B)
    with w.fake.state() as ws:
        channels = [c.id for c in ws.channels.values() if c.team_id == TEAM_B]
        hooks = {h.id for h in ws.hooks.values() if h.team_id == TEAM_B}
    shown: list[Any] = [w.fake.messages(c, include_replies=True) for c in channels]
    shown += [e for e in w.fake.ephemerals() if e["user"] in members]
    shown += [v for v in w.fake.views() if v.get("team_id") == TEAM_B]
    shown += [r for r in w.fake.responses() if r["hook"] in hooks]
    return text_of(shown)


def snapshot(w: World) -> tuple[Json, Json]:
    """Team A's storage and workspace once earlier work has settled."""
    settle(w.fake)
    return a_storage(w), a_workspace(w)


def assert_a_untouched(w: World, storage: Json, workspace: Json) -> None:
    """Team A's storage and workspace are as they were, and B's workspace shows none of A's words."""
    settle(w.fake)
    assert a_storage(w) == storage
    assert a_workspace(w) == workspace
    shown = seen_by_b(w)
    assert not [word for word in A_WORDS if word in shown], [w for w in A_WORDS if w in shown]


def b_notes(w: World, user: str = CAROL_B) -> list[str]:
    """The ephemerals B's user got in B's #general."""
    return [text_of(e) for e in w.fake.ephemerals(user) if e["channel"] == GENERAL_B]


# --- the tests ---------------------------------------------------------------------------------------------
def test_team_a_is_visible_to_team_a(world: World) -> None:
    w = world
    storage = a_storage(w)
    assert len(storage["turns"][w.thread_a]) == 1 and storage["tally"] == {2: 1}
    assert "Quillon" in storage["saved"][ALICE][0] and storage["defaults"][ALICE].style == STYLE_A
    assert w.a.user_opens_home(ALICE).status == 200
    settle(w.fake)
    home = text_of(wait_for(lambda: w.fake.home_view(ALICE, TEAM_A)))
    assert "Quillon" in home and STYLE_A in home  # A's Home shows A's work: the checks below can fail
    assert "Quillon" not in seen_by_b(w) and results_in(w.fake, GENERAL_B, w.root_b)


def test_replies_reactions_and_mentions_claiming_team_b_do_not_reach_team_a(world: World) -> None:
    w = world
    storage, workspace = snapshot(w)
    ts = w.fake.post_as_user(GENERAL_B, "make it purple", CAROL_B)["ts"]  # a real ts, from B's channel
    reply = {"type": "message", "channel": GENERAL, "user": CAROL_B, "text": "make it purple", "ts": ts}
    reply |= {"thread_ts": w.root_a, "event_ts": ts, "channel_type": "channel"}
    assert w.b.event(reply).status == 200
    assert w.b.event({**reply, "thread_ts": w.avatar_a, "text": "pick 2"}).status == 200
    bot_b = w.fake.team(TEAM_B).bot_user_id
    mention = {**reply, "type": "app_mention", "text": f"<@{bot_b}> a Quillon for us"}
    mention.pop("thread_ts")
    assert w.b.event(mention).status == 200
    for name in ("one", "two", "three"):
        vote = w.b.reaction_added_event(GENERAL, str(w.candidates_a["ts"]), name, CAROL_B)
        assert w.b.event(vote).status == 200
    removed = {**w.b.reaction_added_event(GENERAL, w.avatar_a, "two", CAROL_B), "type": "reaction_removed"}
    assert w.b.event(removed).status == 200
    assert_a_untouched(w, storage, workspace)


@pytest.mark.parametrize(
    ("action_id", "value"),
    [
        (ACTION_USE_HIT, "{thread_a}:1"),
        (ACTION_REROLL, "{thread_a}:{turn_a}"),
        (ACTION_VARY, "{thread_a}:{turn_a}"),
        (ACTION_EDIT_PROMPT, "{thread_a}:{turn_a}"),
        (ACTION_SAVE_PROMPT, "{thread_a}:{turn_a}"),
        (ACTION_FEEDBACK_UP, "{thread_a}:{turn_a}"),
        (ACTION_FEEDBACK_DOWN, "{thread_a}:{turn_a}"),
        (ACTION_EDIT_PROMPT, "{thread_b}:{turn_a}"),  # B's own thread with A's turn
        (ACTION_SAVE_PROMPT, "{thread_b}:{turn_a}"),
        (ACTION_FEEDBACK_UP, "{thread_b}:{turn_a}"),
        (ACTION_VOTE, "{avatar_thread_a}:1"),
        (ACTION_PICK_WINNER, "{avatar_thread_a}"),
        (ACTION_UPSCALE, "{thread_a}:{turn_a}"),
        (ACTION_REMOVE_BACKGROUND, "{thread_a}:{turn_a}"),
        (ACTION_USE_SKETCH, "{thread_a}:{turn_a}"),
        (ACTION_DESCRIBE, "{thread_a}:{turn_a}"),
    ],
)
def test_team_b_buttons_with_team_a_ids_are_out_of_date(world: World, action_id: str, value: str) -> None:
    w = world
    storage, workspace = snapshot(w)
    ids = {"thread_a": w.thread_a, "turn_a": w.turn_a, "thread_b": w.thread_b}
    pressed = value.format(avatar_thread_a=w.avatar_thread_a, **ids)
    before = len(b_notes(w))
    answer = w.b.block_action(action_id, pressed, CAROL_B, GENERAL_B, str(w.result_b["ts"]))
    assert answer.status == 200
    notes = wait_for(lambda: b_notes(w)[before:])
    assert len(notes) == 1 and OUT_OF_DATE in notes[0]  # B is told, in B's channel, and nothing else
    assert len(results_in(w.fake, GENERAL_B, w.root_b)) == 1  # nothing ran in B's thread either
    assert_a_untouched(w, storage, workspace)
    assert w.rig.services.defaults.saved_prompts(TEAM_B, CAROL_B) == []


@pytest.mark.parametrize(
    "action_id",
    [ACTION_USE_HIT, ACTION_REROLL, ACTION_VARY, ACTION_EDIT_PROMPT, ACTION_SAVE_PROMPT, ACTION_FEEDBACK_UP,
     ACTION_VOTE, ACTION_PICK_WINNER, ACTION_RETRY],
)  # fmt: skip
def test_team_b_clicks_on_team_a_messages_change_and_show_nothing(world: World, action_id: str) -> None:
    """A click that claims team B but A's channel and message (as if B's user saw A's buttons)."""
    w = world
    storage, workspace = snapshot(w)
    message = {
        ACTION_USE_HIT: w.hits_a,
        ACTION_VOTE: w.candidates_a,
        ACTION_PICK_WINNER: w.candidates_a,
    }.get(action_id, w.result_a)
    value = (
        json.dumps({"op": "start", "text": "a Quillon for team B"})
        if action_id == ACTION_RETRY
        else button_value(message, action_id)
    )
    assert w.b.block_action(action_id, value, CAROL_B, GENERAL, str(message["ts"])).status == 200
    assert_a_untouched(w, storage, workspace)
    assert not [v for v in w.fake.views(CAROL_B) if v.get("callback_id") == VIEW_EDIT_PROMPT]


def test_team_b_cannot_draw_into_team_a_threads_from_a_modal(world: World) -> None:
    w = world
    storage, workspace = snapshot(w)
    for metadata in (str(w.thread_a), str(w.avatar_thread_a)):
        answer = w.b.view_submission(
            VIEW_EDIT_PROMPT, edit_values("a Quillon, redrawn by B"), metadata, CAROL_B
        )
        assert answer.status == 200
    channel = defaults_values("9:16", "Quillon neon")
    assert w.b.view_submission(VIEW_CHANNEL_DEFAULTS, channel, GENERAL, CAROL_B).status == 200
    assert_a_untouched(w, storage, workspace)
    assert w.rig.services.defaults.channel_defaults(TEAM_B, GENERAL) == UserDefaults()


def test_team_b_commands_in_team_a_channels_post_nothing_there(world: World) -> None:
    w = world
    storage, workspace = snapshot(w)
    assert w.b.slash_command(COMMAND_IMAGINE, "a Quillon for B", CAROL_B, GENERAL).status == 200
    assert w.b.slash_command(COMMAND_AVATAR, "Quillon robots", CAROL_B, GENERAL).status == 200
    assert w.b.slash_command(COMMAND_IMAGINE, "--settings", CAROL_B, GENERAL).status == 200
    settle(w.fake)
    # B's user is told (privately, in B's workspace) that the bot cannot post there; no modal shows A's
    # channel defaults: the --settings modal is read for (team B, that channel id) and then refused
    assert [r for r in w.fake.responses() if r["user"] == CAROL_B and "can't post" in text_of(r["payload"])]
    modals = [v for v in w.fake.views(CAROL_B) if v["type"] == "modal"]
    assert modals and not [v for v in modals if CHANNEL_STYLE_A in text_of(v)]
    assert_a_untouched(w, storage, workspace)


def test_a_user_in_both_workspaces_sees_only_that_workspace_on_home(world: World) -> None:
    """Enterprise Grid: one user id in two workspaces. B's Home, defaults modal and saves stay B's."""
    w = world
    storage, workspace = snapshot(w)
    with w.fake.state() as ws:  # from now on the sandbox places Alice in team B (Grid's shared user id)
        ws.users[ALICE].team_id = TEAM_B
        ws.channels[GENERAL_B].members.add(ALICE)
    try:
        assert w.b.user_opens_home(ALICE).status == 200
        home = wait_for(lambda: w.fake.home_view(ALICE, TEAM_B))
        assert home is not None
        shown = text_of(home)
        assert "No images yet" in shown and "Nothing saved yet" in shown and "_not set_" in shown
        assert not [word for word in A_WORDS if word in shown]
        opened = w.b.block_action(ACTION_OPEN_DEFAULTS, "user", ALICE, view_id=str(home["id"]))
        assert opened.status == 200
        [modal] = wait_for(
            lambda: [v for v in w.fake.views(ALICE) if v.get("callback_id") == VIEW_USER_DEFAULTS and
                     v.get("team_id") == TEAM_B]
        )  # fmt: skip
        assert STYLE_A not in text_of(modal)  # prefilled with B's (empty) defaults, not A's
        assert (
            w.b.view_submission(VIEW_USER_DEFAULTS, defaults_values("1:1", "team B neon"), user=ALICE).status
            == 200
        )
        wait_for(lambda: "team B neon" in text_of(w.fake.home_view(ALICE, TEAM_B)))
        assert w.b.slash_command(COMMAND_IMAGINE, "a Grid otter", ALICE, GENERAL_B).status == 200
        otter = newest_root(w.fake, GENERAL_B, "a Grid otter")
        wait_for(lambda: results_in(w.fake, GENERAL_B, otter))
        assert "team B neon" in text_of(results_in(w.fake, GENERAL_B, otter)[0])  # B's defaults apply in B
        assert "Quillon" not in text_of(w.rig.services.recent.recent_images(TEAM_B, ALICE))
        assert w.rig.services.defaults.saved_prompts(TEAM_B, ALICE) == []
    finally:
        with w.fake.state() as ws:
            ws.users[ALICE].team_id = TEAM_A
    assert a_storage(w) == storage  # A's defaults for the same user id are untouched
    assert a_workspace(w)["general"] == workspace["general"]


# --- who may press what, inside one workspace --------------------------------------------------------------
def test_only_the_owner_picks_the_winner_and_everyone_else_collaborates(fake: FakeSlackApi, rig: Rig) -> None:
    """Pick winner settles the owner's brainstorm, so only the owner may press it; the other buttons add a
    turn (like a reply in the thread, which anyone may post) or act for the clicker (save, 👍/👎, vote).
    No button deletes anyone's work: Retry removes only the bot's own error message."""
    press = rig.driver.block_action
    assert rig.driver.slash_command(COMMAND_AVATAR, "otters in hats", ALICE, GENERAL).status == 200
    avatar = newest_root(fake, GENERAL, "otters in hats")
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, avatar) if "brainstorm_actions" in block_ids(m)]
    )
    pick, at = button_value(candidates, ACTION_PICK_WINNER), str(candidates["ts"])
    assert press(ACTION_PICK_WINNER, pick, BOB, GENERAL, at).status == 200
    wait_for(lambda: [e for e in fake.ephemerals(BOB) if "can pick the winner" in text_of(e)])
    settle(fake)
    assert not results(fake, avatar)  # Bob's click changed nothing
    vote = button_value(candidates, ACTION_VOTE, "candidate_1")
    assert press(ACTION_VOTE, vote, BOB, GENERAL, at).status == 200
    wait_for(lambda: [e for e in fake.ephemerals(BOB) if "Your vote for #1" in text_of(e)])
    assert press(ACTION_PICK_WINNER, pick, ALICE, GENERAL, at).status == 200
    wait_for(lambda: len(results(fake, avatar)) == 2)  # the refined winner, then its icon

    assert rig.driver.slash_command(COMMAND_IMAGINE, "a little dog", ALICE, GENERAL).status == 200
    root = newest_root(fake, GENERAL, "a little dog")
    wait_for(lambda: results(fake, root))
    for count, action_id in enumerate((ACTION_REROLL, ACTION_VARY, ACTION_USE_HIT), start=2):
        source = hits_of(fake, root)[0] if action_id == ACTION_USE_HIT else results(fake, root)[-1]
        assert (
            press(action_id, button_value(source, action_id), BOB, GENERAL, str(source["ts"])).status == 200
        )
        wait_for(lambda: len(results(fake, root)) == count)  # noqa: B023
    latest = results(fake, root)[-1]
    for action_id in (ACTION_SAVE_PROMPT, ACTION_FEEDBACK_DOWN, ACTION_EDIT_PROMPT):
        assert (
            press(action_id, button_value(latest, action_id), BOB, GENERAL, str(latest["ts"])).status == 200
        )
    wait_for(lambda: [v for v in fake.views(BOB) if v.get("callback_id") == VIEW_EDIT_PROMPT])
    assert rig.driver.view_submission(VIEW_EDIT_PROMPT, edit_values("a dog, ink"), user=BOB).status == 200
    wait_for(lambda: len(results(fake, root)) == 5)
    saved = rig.services.defaults.saved_prompts
    assert saved(TEAM_A, BOB) and not saved(TEAM_A, ALICE)  # Save keeps it in the clicker's library
    assert not [e for e in fake.ephemerals(BOB) if "only" in text_of(e) and "dog" in text_of(e)]


def test_every_team_a_thread_id_is_unknown_to_team_b(world: World) -> None:
    """The stores answer nothing for another team's ids (the listeners rely on it)."""
    w = world
    services = w.rig.services
    for thread in (w.thread_a, w.avatar_thread_a):
        assert services.threads.find_thread(TEAM_B, thread) is None
        assert services.threads.turns(TEAM_B, thread) == []
        assert services.feedback.tally(TEAM_B, thread) == {}
    assert services.threads.find_turn(TEAM_B, w.turn_a) is None
    assert services.threads.find_thread_by_ref(ThreadRef(TEAM_B, GENERAL_B, w.root_a)) is None
    assert services.threads.find_thread(TEAM_A, w.thread_b) is None
