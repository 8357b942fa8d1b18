"""Secrets (Slack token, signing and client secrets, AWS keys) never appear in logs or in what Slack shows.

A whole conversation runs through the real Bolt app with distinctive secrets, the image model on the
Bedrock stand-in (so botocore signs with the AWS keys), and every log record of every logger captured at
DEBUG; then the logs, every message, ephemeral, view, upload, response_url post, ack body and Web API
argument are searched for each secret and for every 12-character piece of it.
"""

from __future__ import annotations

import html
import json
import logging
import re
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydantic import SecretStr

from bot.drawing.bedrock_images import BedrockImageModel
from bot.log_redaction import MASK, SecretsFilter, add_secrets, install_log_redaction, redact
from bot.slack.ids import (
    ACTION_EDIT_PROMPT,
    ACTION_FEEDBACK_DOWN,
    ACTION_FEEDBACK_UP,
    ACTION_OPEN_DEFAULTS,
    ACTION_PICK_WINNER,
    ACTION_REROLL,
    ACTION_RETRY,
    ACTION_SAVE_PROMPT,
    ACTION_USE_HIT,
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
from sandbox.bedrock_image_models import FAIL_WORD, install_image_handlers
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.reliability_record import figures
from tests.slack.slack_rig import (
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

SD35 = "stability.sd3-5-large-v1:0"
BOT_TOKEN = "xoxb-7301846259-5174029386-QzTokenKx7Lw2Vb9Np4Rs"
SIGNING_SECRET = "SigningQz5Hv8Mc3Ty6Wd1Fk9Secret"
CLIENT_ID = "7301846259.5174029386"
CLIENT_SECRET = "ClientQz2Jn7Ux4Ep8Gs5Secret"
AWS_KEY_ID = "AKIAQZ7KX2LW9VBN4PRS"
AWS_SECRET = "wQz9Kx7Lw2Vb9Np4RsTu6Hv8Mc3Ty6Wd1Fk9Gj5/"
SECRETS = {
    "bot token": BOT_TOKEN,
    "signing secret": SIGNING_SECRET,
    "client secret": CLIENT_SECRET,
    "AWS access key id": AWS_KEY_ID,
    "AWS secret access key": AWS_SECRET,
}
PIECE = 12  # any 12 characters of a secret in a row count as a leak
NOISY: tuple[str, ...] = ("slack_bolt", "slack_sdk", "urllib3", "botocore", "boto3", "sqlalchemy", "bot")
NOISY += ("storage", "retrieval", "test.slack_app", "langchain_aws", "langchain_core", "tests", "")
COOKIE = "slack-app-oauth-state"


class Captured(logging.Handler):
    """Every record that reaches the root logger, formatted with its traceback as it is emitted."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []
        self.loggers: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))
        self.loggers.add(record.name)


@pytest.fixture
def captured() -> Iterator[Captured]:
    """All loggers at DEBUG into one handler on the root logger (levels restored afterwards)."""
    handler = Captured()
    levels = {name: logging.getLogger(name).level for name in NOISY}
    for name in NOISY:
        logging.getLogger(name).setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """Each secret of which any PIECE-character run occurs in `text`, with where it shows."""
    found = []
    for name, secret in secrets.items():
        for start in range(len(secret) - PIECE + 1):
            at = text.find(secret[start : start + PIECE])
            if at >= 0:
                found.append(f"{name}: …{text[max(0, at - 80) : at + 80]}…")
                break
    return found


def use_distinctive_token(fake: FakeSlackApi) -> None:
    """Give the sandbox team T0001 the distinctive bot token (its old one stops working)."""
    with fake.state() as ws:
        team = ws.teams[TEAM]
        ws.tokens.pop(team.bot_token, None)
        team.bot_token = BOT_TOKEN
        ws.tokens[BOT_TOKEN] = TEAM


def install_over_oauth(rig: Rig, fake: FakeSlackApi) -> None:
    """The browser side of /slack/install → Slack → /slack/oauth_redirect for team T0001."""
    parts = urlsplit(rig.driver.events_url)
    base = f"{parts.scheme}://{parts.netloc}"
    with urllib.request.urlopen(base + "/slack/install", timeout=10) as page:
        body, cookie = page.read().decode(), page.headers["Set-Cookie"].split(";")[0]
    found = re.search(r'<a href="([^"]+)"', body)
    assert found is not None and cookie.startswith(COOKIE)
    state = parse_qs(urlsplit(html.unescape(found.group(1))).query)["state"][0]
    query = urlencode({"code": fake.oauth_code(TEAM, ALICE), "state": state})
    request = urllib.request.Request(f"{base}/slack/oauth_redirect?{query}", headers={"Cookie": cookie})
    with urllib.request.urlopen(request, timeout=10) as done:
        assert done.status == 200 and "Thank you!" in done.read().decode()


def text_of(message: Json) -> str:
    """A message's text and blocks as one string."""
    return str(message.get("text", "")) + json.dumps(message.get("blocks") or [], ensure_ascii=False)


def root_of(fake: FakeSlackApi, idea: str) -> str:
    """The ts of the newest thread root in #general that shows `idea`."""
    found = wait_for(lambda: [m for m in fake.messages(GENERAL) if idea in text_of(m)])
    return str(found[-1]["ts"])


def click(rig: Rig, action_id: str, message: Json, user: str = ALICE, value: str | None = None) -> None:
    """A person presses a button of a message in #general."""
    pressed = value if value is not None else button_value(message, action_id)
    assert rig.driver.block_action(action_id, pressed, user, GENERAL, str(message["ts"])).status == 200


def ephemeral_says(fake: FakeSlackApi, user: str, words: str) -> None:
    """Wait until the user was told `words` privately."""
    wait_for(lambda: any(words in text_of(e) for e in fake.ephemerals(user)))


def settings_values(ratio: str, style: str, negative: str, model: str) -> Json:
    """view.state.values of a defaults modal."""
    return {
        RATIO_BLOCK: {RATIO_INPUT: {"type": "static_select", "selected_option": {"value": ratio}}},
        STYLE_BLOCK: {STYLE_INPUT: {"type": "plain_text_input", "value": style}},
        DEFAULT_NEGATIVE_BLOCK: {DEFAULT_NEGATIVE_INPUT: {"type": "plain_text_input", "value": negative}},
        MODEL_BLOCK: {MODEL_INPUT: {"type": "plain_text_input", "value": model}},
    }


def converse(fake: FakeSlackApi, rig: Rig, bedrock: FakeBedrockRuntime) -> None:
    """Everything a workspace does with the app: imagine, refine, every button, avatars, Home, settings,
    a DM, and the error paths (throttled and failing image model, a Slack error, bad flags, bad requests)."""
    driver = rig.driver
    assert driver.slash_command(COMMAND_IMAGINE, "a lighthouse at dusk --ar 3:2", ALICE).status == 200
    root = root_of(fake, "a lighthouse at dusk")
    wait_for(lambda: results(fake, root))
    driver.user_posts(GENERAL, "make it stormy", BOB, thread_ts=root)
    wait_for(lambda: len(results(fake, root)) == 2)
    for step, action_id in enumerate((ACTION_REROLL, ACTION_VARY), start=3):
        click(rig, action_id, results(fake, root)[-1])
        wait_for(lambda: len(results(fake, root)) == step)  # noqa: B023
    click(rig, ACTION_USE_HIT, hits_of(fake, root)[0])
    wait_for(lambda: len(results(fake, root)) == 5)
    latest = results(fake, root)[-1]
    click(rig, ACTION_SAVE_PROMPT, latest, BOB)
    click(rig, ACTION_FEEDBACK_UP, latest)
    click(rig, ACTION_FEEDBACK_DOWN, latest, BOB)
    ephemeral_says(fake, BOB, "Saved to your library")
    click(rig, ACTION_EDIT_PROMPT, latest)
    wait_for(lambda: [v for v in fake.views(ALICE) if v.get("callback_id") == VIEW_EDIT_PROMPT])
    edited = {
        PROMPT_BLOCK: {PROMPT_INPUT: {"type": "plain_text_input", "value": "a lighthouse, ink wash"}},
        NEGATIVE_BLOCK: {NEGATIVE_INPUT: {"type": "plain_text_input", "value": "text"}},
    }
    assert driver.view_submission(VIEW_EDIT_PROMPT, edited).status == 200
    wait_for(lambda: len(results(fake, root)) == 6)

    assert driver.slash_command(COMMAND_AVATAR, "friendly robots", ALICE).status == 200
    avatar = root_of(fake, "friendly robots")
    [candidates] = wait_for(
        lambda: [m for m in fake.messages(GENERAL, avatar) if "brainstorm_actions" in block_ids(m)]
    )
    click(rig, ACTION_VOTE, candidates, BOB, button_value(candidates, ACTION_VOTE, "candidate_2"))
    driver.user_reacts(GENERAL, str(candidates["ts"]), "three", BOB)
    click(rig, ACTION_PICK_WINNER, candidates, BOB)
    ephemeral_says(fake, BOB, "can pick the winner")
    click(rig, ACTION_PICK_WINNER, candidates)
    wait_for(lambda: len(results(fake, avatar)) == 2)  # the refined winner, then its icon

    assert driver.user_opens_home(ALICE).status == 200
    home = wait_for(lambda: fake.home_view(ALICE, TEAM))
    assert home is not None
    opened = driver.block_action(ACTION_OPEN_DEFAULTS, "user", ALICE, view_id=str(home["id"]))
    assert opened.status == 200
    wait_for(lambda: [v for v in fake.views(ALICE) if v.get("callback_id") == VIEW_USER_DEFAULTS])
    mine = settings_values("16:9", "watercolor", "blurry", "")
    assert driver.view_submission(VIEW_USER_DEFAULTS, mine).status == 200
    wait_for(lambda: "watercolor" in json.dumps(fake.home_view(ALICE, TEAM)))
    assert driver.slash_command(COMMAND_IMAGINE, "--settings", BOB).status == 200
    wait_for(lambda: [v for v in fake.views(BOB) if v.get("callback_id") == VIEW_CHANNEL_DEFAULTS])
    channel = settings_values("1:1", "pixel art", "", "")
    assert driver.view_submission(VIEW_CHANNEL_DEFAULTS, channel, user=BOB).status == 200
    ephemeral_says(fake, BOB, "Channel defaults updated")

    with fake.state() as ws:
        dm = ws.im_for(ws.teams[TEAM], ALICE).id
    message = driver.user_posts(dm, "a paper boat on a puddle", ALICE)
    wait_for(lambda: [m for m in fake.messages(dm, str(message["ts"])) if "result_actions" in block_ids(m)])

    bedrock.fail_next(429, "ThrottlingException", times=1)  # a busy model: an error with a Retry button
    assert driver.slash_command(COMMAND_IMAGINE, "a red fox in the snow", ALICE).status == 200
    fox = root_of(fake, "a red fox in the snow")
    [failed] = wait_for(lambda: [m for m in fake.messages(GENERAL, fox) if "error_actions" in block_ids(m)])
    click(rig, ACTION_RETRY, failed, BOB)
    wait_for(lambda: results(fake, fox))
    assert driver.slash_command(COMMAND_IMAGINE, f"a {FAIL_WORD} kite", ALICE).status == 200  # model fails
    kite = root_of(fake, f"{FAIL_WORD} kite")
    wait_for(lambda: [m for m in fake.messages(GENERAL, kite)[1:] if ":x:" in text_of(m)])
    fake.fail_next("chat.postMessage", "fatal_error", status=200)  # Slack refuses the thread root
    assert driver.slash_command(COMMAND_IMAGINE, "a green frog", ALICE).status == 200
    wait_for(lambda: [r for r in fake.responses() if "fatal_error" in json.dumps(r["payload"])])
    bad = driver.slash_command(COMMAND_IMAGINE, "a fox --seed banana", ALICE)
    assert bad.status == 200 and "--seed" in bad.body
    assert driver.forged().slash_command(COMMAND_IMAGINE, "a forged fox", ALICE).status == 401
    assert driver.post_raw("payload=not-json", "application/x-www-form-urlencoded").status == 400
    assert driver.block_action(ACTION_REROLL, "not-a-thread", ALICE, GENERAL, root).status == 200
    ephemeral_says(fake, ALICE, "out of date")
    settle(fake)


def shown_to_people(fake: FakeSlackApi, rig: Rig) -> str:
    """Everything the app made visible or sent: messages, ephemerals, views, files, responses, acks and
    the arguments of every Web API call (oauth.v2.access, which must carry the client secret, aside)."""
    with fake.state() as ws:
        channels = list(ws.channels)
    parts: list[Any] = [fake.messages(channel, include_replies=True) for channel in channels]
    parts += [fake.ephemerals(), fake.views(), fake.responses()]
    parts += [{k: v for k, v in upload.items() if k != "data"} for upload in fake.uploads()]
    parts += [upload["data"].decode("latin-1") for upload in fake.uploads()]
    parts += [(d.status, d.body) for d in rig.driver.deliveries]
    parts += [(c.method, c.params) for c in fake.calls if c.method != "oauth.v2.access"]
    return json.dumps(parts, ensure_ascii=False, default=str)


@pytest.mark.parametrize("mode", ["bot_token", "oauth"])
def test_a_whole_conversation_shows_no_secret_in_logs_or_slack(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    captured: Captured,
    mode: str,
) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    use_distinctive_token(fake)
    slack: dict[str, Any] = {"bot_token": SecretStr(BOT_TOKEN), "signing_secret": SecretStr(SIGNING_SECRET)}
    if mode == "oauth":
        fake.register_oauth_client(CLIENT_ID, CLIENT_SECRET)
        slack.update(bot_token=None, client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET))
    with FakeBedrockRuntime() as bedrock:
        install_image_handlers(bedrock)
        model = BedrockImageModel(SD35, "us-east-1", endpoint_url=bedrock.url, max_attempts=1)
        with serve(fake, retriever, tmp_path, slack=slack, images=model) as served:
            rig = Rig(SlackDriver(served.driver.events_url, SIGNING_SECRET, fake), served.services)
            if mode == "oauth":
                install_over_oauth(rig, fake)
            converse(fake, rig, bedrock)
        signed = [r.headers.get("authorization", "") for r in bedrock.requests]

    # the secrets were really in use: Slack calls carried the token, Bedrock calls were signed with the key
    posts = [c for c in fake.calls_to("chat.postMessage") if c.response.get("ok")]
    assert len(posts) > 20 and {c.team_id for c in posts} == {TEAM}
    assert signed and all(f"Credential={AWS_KEY_ID}/" in header for header in signed)
    if mode == "oauth":
        [access] = fake.calls_to("oauth.v2.access")
        assert access.response["access_token"] == BOT_TOKEN

    logs = "\n".join(captured.lines)
    problems = leaks(logs, SECRETS) + leaks(shown_to_people(fake, rig), SECRETS)
    assert problems == [], "\n".join(problems)
    # the logs are the chatty DEBUG logs of every library, and the leaky paths were hit and masked
    assert len(captured.lines) > 1000
    assert {"slack_sdk.web.base_client", "botocore.endpoint", "sqlalchemy.engine.Engine"} <= captured.loggers
    assert re.search(r"Credential=(AKIA)?\*\*\*/", logs)  # botocore logs the Authorization header at DEBUG
    if mode == "oauth":
        # slack_sdk logs oauth.v2.access's answer, SQLAlchemy the installation row and its reads
        assert re.search(r'"access_token": "(xoxb-)?\*\*\*"', logs) and re.search(
            r"'(xoxb-)?\*\*\*', 'B0BOT'", logs
        )
    sys.stderr.write(f"secrets: {len(captured.lines)} log records from {len(captured.loggers)} loggers\n")
    figures(
        f"secrets.{mode}", records=len(captured.lines), loggers=len(captured.loggers), secrets=len(SECRETS)
    )


# --- the filter itself -------------------------------------------------------------------------------------
def test_token_patterns_are_masked_whatever_their_value() -> None:
    text = (
        "xoxb-1-2-abc xoxp-9-8-def xoxa-2-ghi xoxe.xoxp-1-jkl xoxe-1-mno xapp-1-A0-123-pqr "
        "Credential=ASIAABCDEFGHIJKLMNOP/2025 AKIAABCDEFGHIJKLMNOP "
        "Authorization: Bearer abc.def-ghi_jkl 'X-Amz-Security-Token': b'IQoJb3JpZ2luX2VjEHIaCXVz'"
    )
    masked = redact(text)
    for token in ("1-2-abc", "9-8-def", "2-ghi", "1-jkl", "1-mno", "A0-123-pqr", "ABCDEFGHIJKLMNOP"):
        assert token not in masked
    assert "abc.def-ghi_jkl" not in masked and "IQoJb3JpZ2luX2VjEHIaCXVz" not in masked
    assert masked.count(MASK) == 10 and "xoxb-***" in masked and "ASIA***" in masked
    assert (
        redact("a red fox, seed 42, thread 1717171717.000100")
        == "a red fox, seed 42, thread 1717171717.000100"
    )


def test_configured_secrets_are_masked_in_arguments_tracebacks_and_stacks() -> None:
    secret = "Zq8-literal-secret-for-the-filter-test"
    add_secrets([SecretStr(secret), "short", None])
    handler = Captured()
    handler.addFilter(SecretsFilter())
    logger = logging.getLogger("tests.log_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s and %r", secret, {"token": "xoxb-5-6-secret"})
        try:
            raise RuntimeError(f"refused: {secret}")
        except RuntimeError:
            logger.exception("failed")
        logger.info("where %s", secret, stack_info=True)
        logger.warning("a short value stays: short")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    joined = "\n".join(handler.lines)
    assert secret not in joined and "xoxb-5-6-secret" not in joined
    assert "RuntimeError: refused: ***" in joined and "Traceback" in joined
    assert "a short value stays: short" in joined  # fewer than MIN_LITERAL_CHARS: not masked everywhere


def test_installed_redaction_covers_loggers_and_handlers_added_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env/Secret+Key0123456789abcdefghijklmn")
    install_log_redaction(SecretStr("configured-signing-secret-123456"), None)
    install_log_redaction()  # idempotent: one factory, secrets accumulate
    handler = Captured()
    late = logging.getLogger("a.library.created.later")
    late.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    try:
        late.debug(
            "sig=%s aws=%s", "configured-signing-secret-123456", "env/Secret+Key0123456789abcdefghijklmn"
        )
    finally:
        logging.getLogger().removeHandler(handler)
        late.setLevel(logging.NOTSET)
    assert handler.lines and handler.lines[-1].endswith("sig=*** aws=***")
