"""manifest.yml: valid against Slack's manifest schema, in step with bot/slack/ids.py, printed as JSON."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from slack_bolt import App

from bot.engine.options import OPTION_NAMES
from bot.slack import ids as slack_ids
from bot.slack.handlers import register_listeners
from bot.slack.handlers.registry import Registered
from bot.slack.ids import ACTIONS, BOT_SCOPES, COMMANDS, EVENT_MESSAGE, MANIFEST_BOT_EVENTS, VIEWS
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from tests.slack.slack_rig import serve

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "manifest.yml"
SCRIPT = ROOT / "deploy" / "manifest.py"
SCHEMA_DIR = (
    Path(os.environ.get("IMAGINE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    / "slack-manifest-schema"
)
VERSIONED = "manifest.schema.1.0.0.json"
BLOCK_BUILDERS = sorted((ROOT / "bot" / "slack" / "reply").glob("*.py"))
# A `message` listener receives what these manifest subscriptions deliver (one per conversation type).
MESSAGE_EVENTS = ("message.channels", "message.groups", "message.im", "message.mpim")


@pytest.fixture(scope="module")
def schema_dir() -> Path:
    """Slack's manifest schemas in the shared data (never copied into the repo)."""
    if not (SCHEMA_DIR / VERSIONED).is_file():
        pytest.fail(f"Slack's manifest schema not found in {SCHEMA_DIR}; set IMAGINE_SHARED_DATA")
    return SCHEMA_DIR


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    """manifest.yml as data."""
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def printer() -> ModuleType:
    """deploy/manifest.py loaded as a module (deploy/ is a script folder, not a package)."""
    spec = importlib.util.spec_from_file_location("deploy_manifest", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the manifest printer as `python deploy/manifest.py ...`."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_manifest_is_valid_against_slacks_versioned_schema(
    schema_dir: Path, manifest: dict[str, Any]
) -> None:
    jsonschema: Any = importlib.import_module("jsonschema")
    schema = json.loads((schema_dir / VERSIONED).read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in jsonschema.Draft7Validator(schema).iter_errors(manifest)
    ]
    assert errors == []
    assert manifest["_metadata"]["major_version"] == 1


def test_manifest_is_valid_through_the_entry_schema(
    schema_dir: Path, manifest: dict[str, Any], printer: ModuleType
) -> None:
    assert printer.validate(manifest, schema_dir) == []
    assert printer.validate(manifest, schema_dir / VERSIONED) == []


def test_schema_violations_are_named(schema_dir: Path, manifest: dict[str, Any], printer: ModuleType) -> None:
    broken = json.loads(json.dumps(manifest))
    broken["display_information"]["name"] = "x" * 36
    broken["settings"]["socket_mode_enabled"] = "yes"
    broken["features"]["slash_commands"][0]["command"] = "imagine"
    problems = printer.validate(broken, schema_dir)
    assert any(p.startswith("display_information/name:") for p in problems)
    assert any(p.startswith("settings/socket_mode_enabled:") for p in problems)
    assert any(p.startswith("features/slash_commands/0/command:") for p in problems)


def test_manifest_matches_slack_ids(manifest: dict[str, Any]) -> None:
    commands = [command["command"] for command in manifest["features"]["slash_commands"]]
    assert commands == list(COMMANDS)
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == sorted(MANIFEST_BOT_EVENTS) and len(events) == len(MANIFEST_BOT_EVENTS)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert sorted(scopes) == sorted(BOT_SCOPES) and len(scopes) == len(BOT_SCOPES)
    assert set(manifest["oauth_config"]["scopes"]) == {"bot"}


def test_manifest_settings(manifest: dict[str, Any]) -> None:
    features, settings = manifest["features"], manifest["settings"]
    assert features["bot_user"]["display_name"] == "imagine"
    assert features["app_home"]["home_tab_enabled"] and features["app_home"]["messages_tab_enabled"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True and settings["org_deploy_enabled"] is False
    imagine = features["slash_commands"][0]
    for flag in ("--ar", "--seed", "--no", "--style", "--n", "--model"):
        assert flag in OPTION_NAMES and flag in imagine["usage_hint"]
    assert all(command["should_escape"] is False for command in features["slash_commands"])
    # Slack's split-view assistant needs its own events; only declare it together with them.
    if "assistant_view" in features:
        assert "assistant_thread_started" in settings["event_subscriptions"]["bot_events"]


def test_printer_prints_json_equal_to_the_yaml(manifest: dict[str, Any]) -> None:
    done = run()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == manifest
    compact = run("--compact")
    assert compact.stdout.count("\n") == 1 and json.loads(compact.stdout) == manifest


def test_printer_check_and_help(schema_dir: Path, tmp_path: Path) -> None:
    good = run("--check", str(schema_dir))
    assert good.returncode == 0 and good.stdout == "" and "is valid" in good.stderr
    bad = tmp_path / "manifest.yml"
    bad.write_text(MANIFEST.read_text(encoding="utf-8") + "unknown_key: 1\n", encoding="utf-8")
    failed = run("--manifest", str(bad), "--check", str(schema_dir))
    assert failed.returncode == 1 and "unknown_key" in failed.stderr
    missing = run("--check", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    helped = run("--help")
    assert helped.returncode == 0 and "--check SCHEMA" in helped.stdout


# what the code registers vs the manifest ------------------------------------------------------------------
@pytest.fixture(scope="module")
def registered(retriever: Retriever, tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """What register_listeners records on a fresh Bolt app, with the services the Slack rig builds."""
    folder = tmp_path_factory.mktemp("manifest_services")
    with FakeSlackApi() as fake, serve(fake, retriever, folder) as rig:
        app = App(
            token="xoxb-test",
            signing_secret="s",
            token_verification_enabled=False,
            process_before_response=True,
        )
        found = register_listeners(app, rig.services)
        names = [*found.commands, *found.events, *found.actions, *found.views]
        # every Bolt listener went through the registrar, so the lists below are the whole story
        assert len(app._listeners) == len(names), "a listener was registered around the Registrar"
        assert len(set(names)) == len(names), f"registered twice: {names}"
        return found


def manifest_events_of(event: str) -> set[str]:
    """The manifest bot events an Events API listener for `event` consumes."""
    return set(MESSAGE_EVENTS) if event == EVENT_MESSAGE else {event}


def builder_action_ids() -> set[str]:
    """Action ids of ACTIONS that the Block Kit builders (bot/slack/reply/) put on buttons and menus."""
    by_name = {name: getattr(slack_ids, name) for name in dir(slack_ids) if name.startswith("ACTION_")}
    found: set[str] = set()
    for path in BLOCK_BUILDERS:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            name = (
                node.id
                if isinstance(node, ast.Name)
                else node.attr
                if isinstance(node, ast.Attribute)
                else None
            )
            if name in by_name:
                found.add(by_name[name])
            elif isinstance(node, ast.Constant) and node.value in ACTIONS:
                found.add(str(node.value))
    return found


def test_builder_scan_sees_the_result_buttons() -> None:
    assert {slack_ids.ACTION_USE_HIT, slack_ids.ACTION_REROLL} <= builder_action_ids() <= set(ACTIONS)


def test_registered_commands_are_the_manifest_commands(
    registered: Registered, manifest: dict[str, Any]
) -> None:
    commands = [command["command"] for command in manifest["features"]["slash_commands"]]
    assert sorted(registered.commands) == sorted(commands)


def test_registered_events_are_the_manifest_bot_events(
    registered: Registered, manifest: dict[str, Any]
) -> None:
    bot_events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    consumed = set().union(*(manifest_events_of(event) for event in registered.events))
    unsubscribed = [e for e in registered.events if not manifest_events_of(e) & bot_events]
    assert unsubscribed == [], "listeners Slack never calls: add their events to manifest.yml"
    assert sorted(bot_events - consumed) == [], "manifest bot events without a listener"


def test_registered_actions_are_known(registered: Registered) -> None:
    assert sorted(set(registered.actions) - set(ACTIONS)) == [], "unknown action ids: add them to slack_ids"


def test_every_builder_button_has_a_listener(registered: Registered) -> None:
    assert sorted(builder_action_ids() - set(registered.actions)) == [], "buttons nobody listens to"


def test_registered_views_are_the_view_callbacks(registered: Registered) -> None:
    assert sorted(registered.views) == sorted(VIEWS)


def test_interactivity_is_enabled_iff_something_is_interactive(
    registered: Registered, manifest: dict[str, Any]
) -> None:
    interactive = bool(registered.actions or registered.views)
    assert manifest["settings"].get("interactivity", {}).get("is_enabled", False) is interactive
