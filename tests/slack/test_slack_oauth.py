"""Multi-workspace mode: Bolt's OAuth flow over HTTP against the sandbox, installs kept in SQLite."""

from __future__ import annotations

import html
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from pydantic import SecretStr
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import Engine, func, inspect, select

from bot.config import ConfigError
from bot.slack.credentials import load_slack_credentials
from bot.slack.ids import BOT_SCOPES, COMMAND_IMAGINE
from bot.slack.oauth import BOTS_TABLE, INSTALLATIONS_TABLE, STATES_TABLE, engine_of, oauth_metadata
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, GENERAL
from tests.entry.test_serve import serving
from tests.slack.slack_rig import SECRET, TEAM, Rig, block_ids, imagine, results, serve, wait_for

CLIENT_ID = "1111.2222"
CLIENT_SECRET = "sandbox-client-secret"
OAUTH = {"bot_token": None, "client_id": CLIENT_ID, "client_secret": SecretStr(CLIENT_SECRET)}
TEAM_2, CAROL, GENERAL_2 = "T0002", "U2CAROL", "C2GENERAL"
COOKIE = "slack-app-oauth-state"


class Page(NamedTuple):
    """One HTTP answer from the app."""

    status: int
    headers: dict[str, str]
    body: str


@pytest.fixture
def oauth_rig(fake: FakeSlackApi, retriever: Retriever, tmp_path: Path) -> Iterator[Rig]:
    """The app in multi-workspace mode (no bot token), its client registered with the sandbox."""
    fake.register_oauth_client(CLIENT_ID, CLIENT_SECRET)
    with serve(fake, retriever, tmp_path, slack=OAUTH) as served:
        yield served


def _base(rig: Rig) -> str:
    """The app's root URL."""
    parts = urlsplit(rig.driver.events_url)
    return f"{parts.scheme}://{parts.netloc}"


def _lower(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Headers keyed by lower-case name."""
    return {name.lower(): value for name, value in headers}


def _get(url: str, cookie: str | None = None) -> Page:
    """GET a page from the app (as a browser would, with the state cookie when given)."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return Page(reply.status, _lower(reply.headers.items()), reply.read().decode())
    except urllib.error.HTTPError as error:
        return Page(error.code, _lower(error.headers.items()), error.read().decode())


def _start_install(base: str) -> tuple[str, str]:
    """Open /slack/install: (the authorize URL's state, the browser cookie that goes with it)."""
    page = _get(base + "/slack/install")
    assert page.status == 200 and "Add to Slack" in page.body
    found = re.search(r'<a href="([^"]+)"', page.body)
    assert found is not None
    authorize = urlsplit(html.unescape(found.group(1)))
    query = parse_qs(authorize.query)
    assert authorize.netloc == "slack.com" and authorize.path == "/oauth/v2/authorize"
    assert query["client_id"] == [CLIENT_ID] and query["scope"] == [",".join(BOT_SCOPES)]
    state = query["state"][0]
    cookie = page.headers["set-cookie"].split(";")[0]
    assert cookie == f"{COOKIE}={state}"
    return state, cookie


def _callback(base: str, cookie: str | None, **params: str) -> Page:
    """Slack sending the installer's browser back to /slack/oauth_redirect."""
    return _get(f"{base}/slack/oauth_redirect?{urlencode(params)}", cookie)


def _install(rig: Rig, fake: FakeSlackApi, team: str, user: str = ALICE) -> Page:
    """The whole install of the app into `team`, as the installer's browser goes through it."""
    base = _base(rig)
    state, cookie = _start_install(base)
    return _callback(base, cookie, code=fake.oauth_code(team, user), state=state)


def _store(rig: Rig) -> SQLAlchemyInstallationStore:
    """The installation store over the app's own engine."""
    return SQLAlchemyInstallationStore(CLIENT_ID, engine_of(rig.services))


def _rows(engine: Engine, table: str) -> int:
    """How many rows a table holds."""
    query = select(func.count()).select_from(oauth_metadata().tables[table])
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def _is_result(message: dict[str, object]) -> bool:
    """A result message (with the Re-roll row)."""
    return "result_actions" in block_ids(message)


def _second_team(fake: FakeSlackApi) -> None:
    """A second workspace with one person and a #general that has the bot."""
    fake.add_team(TEAM_2, "Second")
    fake.add_user(CAROL, "carol", team_id=TEAM_2)
    fake.add_channel(GENERAL_2, "general", "public", [CAROL], team_id=TEAM_2)


def test_install_stores_the_workspace_and_imagine_uses_its_token(fake: FakeSlackApi, oauth_rig: Rig) -> None:
    before = oauth_rig.driver.slash_command(COMMAND_IMAGINE, "a red fox", ALICE, GENERAL)
    assert before.status == 200 and not fake.calls_to("chat.postMessage")  # not installed yet: nothing runs
    assert _store(oauth_rig).find_bot(enterprise_id=None, team_id=TEAM) is None

    page = _install(oauth_rig, fake, TEAM)
    assert page.status == 200 and "Thank you!" in page.body
    assert f"team={TEAM}" in page.body
    bot = _store(oauth_rig).find_bot(enterprise_id=None, team_id=TEAM)
    assert bot is not None and bot.bot_token == fake.bot_token(TEAM)
    assert bot.bot_user_id == fake.team(TEAM).bot_user_id and bot.bot_id == fake.team(TEAM).bot_id
    engine = engine_of(oauth_rig.services)
    assert _rows(engine, INSTALLATIONS_TABLE) == 1 and _rows(engine, STATES_TABLE) == 0  # state consumed
    assert len(fake.calls_to("oauth.v2.access")) == 1

    fake.clear_calls()
    root_ts = imagine(fake, oauth_rig, "a red fox")
    assert results(fake, root_ts)
    web_calls = [c for c in fake.calls if c.method not in ("upload", "response_url", "file_download")]
    assert web_calls and {c.team_id for c in web_calls} == {TEAM}  # every call carried TEAM's bot token
    assert all(c.status == 200 for c in fake.calls_to("chat.postMessage"))


def test_two_workspaces_each_use_their_own_token(fake: FakeSlackApi, oauth_rig: Rig) -> None:
    _second_team(fake)
    assert _install(oauth_rig, fake, TEAM).status == 200
    assert _install(oauth_rig, fake, TEAM_2, CAROL).status == 200
    assert _rows(engine_of(oauth_rig.services), BOTS_TABLE) == 2

    fake.clear_calls()
    second = SlackDriver(oauth_rig.driver.events_url, SECRET, fake, team_id=TEAM_2)
    assert second.slash_command(COMMAND_IMAGINE, "a blue whale", CAROL, GENERAL_2).status == 200
    imagine(fake, oauth_rig, "a red fox")
    root = wait_for(lambda: [m for m in fake.messages(GENERAL_2) if "imagined" in m.get("text", "")])
    wait_for(lambda: [m for m in fake.messages(GENERAL_2, str(root[0]["ts"])) if _is_result(m)])

    home = {GENERAL: TEAM, GENERAL_2: TEAM_2}
    posts = fake.calls_to("chat.postMessage")
    assert {c.team_id for c in posts} == {TEAM, TEAM_2}
    for call in posts:  # each workspace's messages went out with that workspace's own bot token
        assert call.status == 200 and call.team_id == home[str(call.params["channel"])]
    assert len([m for m in fake.messages(GENERAL_2) if "imagined" in m.get("text", "")]) == 1


def test_bad_or_missing_state_gets_a_failure_page_not_a_500(fake: FakeSlackApi, oauth_rig: Rig) -> None:
    base = _base(oauth_rig)
    state, cookie = _start_install(base)

    missing = _callback(base, None, code=fake.oauth_code(TEAM))
    assert missing.status == 400 and "Something Went Wrong" in missing.body
    assert "invalid_browser" in missing.body  # no state cookie: not the browser that started the install
    forged = _callback(base, f"{COOKIE}=forged", code=fake.oauth_code(TEAM), state="forged")
    assert forged.status == 401 and "invalid_state" in forged.body
    mismatched = _callback(base, cookie, code=fake.oauth_code(TEAM), state="other")
    assert mismatched.status == 400 and "invalid_browser" in mismatched.body
    denied = _callback(base, cookie, error="access_denied", state=state)
    assert denied.status == 200 and "access_denied" in denied.body
    bad_code = _callback(base, cookie, code="not-a-code", state=state)
    assert bad_code.status == 401 and "invalid_code" in bad_code.body
    replayed = _callback(base, cookie, code=fake.oauth_code(TEAM), state=state)  # a state works once
    assert replayed.status == 401 and "invalid_state" in replayed.body

    assert _store(oauth_rig).find_bot(enterprise_id=None, team_id=TEAM) is None
    assert _rows(engine_of(oauth_rig.services), INSTALLATIONS_TABLE) == 0


def test_bot_token_mode_serves_no_install_pages(fake: FakeSlackApi, rig: Rig) -> None:
    assert _get(_base(rig) + "/slack/install").status == 404
    assert _get(_base(rig) + "/slack/oauth_redirect?code=x&state=y").status == 404


def test_oauth_stores_share_the_one_engine_and_migrated_tables(oauth_rig: Rig) -> None:
    engine = engine_of(oauth_rig.services)
    assert {INSTALLATIONS_TABLE, BOTS_TABLE, STATES_TABLE} <= set(inspect(engine).get_table_names())
    assert engine is oauth_rig.services.threads.sessions.kw["bind"]  # type: ignore[attr-defined]


def test_oauth_settings_fail_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "s")
    with pytest.raises(ConfigError, match=r"SLACK_BOT_TOKEN is not set .*SLACK_CLIENT_ID"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    with pytest.raises(ConfigError, match="SLACK_CLIENT_SECRET is not set"):
        load_slack_credentials()
    monkeypatch.delenv("SLACK_CLIENT_ID")
    monkeypatch.setenv("SLACK_CLIENT_SECRET", CLIENT_SECRET)
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID is not set"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_CLIENT_ID", "  ")  # blank counts as unset
    with pytest.raises(ConfigError, match="SLACK_CLIENT_ID is not set"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("SLACK_REDIRECT_URI", "ftp://nope")
    with pytest.raises(ConfigError, match="SLACK_REDIRECT_URI must be an http"):
        load_slack_credentials()
    monkeypatch.setenv("SLACK_REDIRECT_URI", "https://bot.example.com/slack/oauth_redirect")
    monkeypatch.setenv("SLACK_AUTHORIZATION_URL", "slack.com/oauth")
    with pytest.raises(ConfigError, match="SLACK_AUTHORIZATION_URL must be an http"):
        load_slack_credentials()
    monkeypatch.delenv("SLACK_AUTHORIZATION_URL")
    loaded = load_slack_credentials()
    assert loaded.oauth and loaded.bot_token is None and CLIENT_SECRET not in repr(loaded)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1")
    assert load_slack_credentials().oauth  # client credentials win over a leftover bot token
    monkeypatch.delenv("SLACK_CLIENT_ID")
    monkeypatch.delenv("SLACK_CLIENT_SECRET")
    assert not load_slack_credentials().oauth


def test_serve_runs_the_install_flow(small_index: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    shutil.copytree(small_index, data_dir / "index" / "prompts")  # this module's retriever holds the original
    with FakeSlackApi() as slack:
        slack.register_oauth_client(CLIENT_ID, CLIENT_SECRET)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("IMAGINE_", "AWS_", "SLACK_"))}
        env.update(
            IMAGINE_DATA_DIR=str(data_dir),
            SLACK_CLIENT_ID=CLIENT_ID,
            SLACK_CLIENT_SECRET=CLIENT_SECRET,
            SLACK_SIGNING_SECRET=SECRET,
            SLACK_API_URL=slack.api_url,
        )
        with serving(env) as port:
            base = f"http://127.0.0.1:{port}"
            state, cookie = _start_install(base)
            page = _callback(base, cookie, code=slack.oauth_code(TEAM), state=state)
            assert page.status == 200 and "Thank you!" in page.body
            driver = SlackDriver(base, SECRET, slack)
            reply = driver.slash_command(COMMAND_IMAGINE, "a red fox", ALICE, GENERAL)
            assert reply.status == 200
            wait_for(lambda: slack.uploads(), timeout=60)
            assert {c.team_id for c in slack.calls_to("chat.postMessage")} == {TEAM}
