"""The App Home tab and the defaults modals through the real Bolt app against the sandbox workspace."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import text

from bot.engine.ports import UserDefaults
from bot.slack.handlers.channel_defaults import open_channel_settings
from bot.slack.ids import (
    ACTION_OPEN_DEFAULTS,
    ACTION_REROLL,
    COMMAND_IMAGINE,
    VIEW_CHANNEL_DEFAULTS,
    VIEW_USER_DEFAULTS,
)
from bot.slack.reply.modal_views import (
    DEFAULT_NEGATIVE_BLOCK,
    DEFAULT_NEGATIVE_INPUT,
    MODEL_BLOCK,
    MODEL_INPUT,
    RATIO_BLOCK,
    RATIO_INPUT,
    STYLE_BLOCK,
    STYLE_INPUT,
)
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, CAROL, GENERAL, PRIVATE
from storage.thread_store import SqlThreadStore
from tests.slack.slack_rig import TEAM, Rig, button_value, imagine, results, wait_for

Json = dict[str, Any]
QUIET = 0.3  # how long to wait before asserting that nothing happened


def settings_values(ratio: str | None = None, style: str = "", negative: str = "", model: str = "") -> Json:
    """view.state.values of a settings modal as Slack sends them."""
    selected = {"text": {"type": "plain_text", "text": ratio}, "value": ratio} if ratio else None
    return {
        RATIO_BLOCK: {RATIO_INPUT: {"type": "static_select", "selected_option": selected}},
        STYLE_BLOCK: {STYLE_INPUT: {"type": "plain_text_input", "value": style or None}},
        DEFAULT_NEGATIVE_BLOCK: {
            DEFAULT_NEGATIVE_INPUT: {"type": "plain_text_input", "value": negative or None}
        },
        MODEL_BLOCK: {MODEL_INPUT: {"type": "plain_text_input", "value": model or None}},
    }


def modals(fake: FakeSlackApi, user: str, callback_id: str | None = None) -> list[Json]:
    """The user's modals, optionally only those with a callback_id."""
    found = [v for v in fake.views(user) if v["type"] == "modal"]
    return [v for v in found if callback_id in (None, v.get("callback_id"))]


def home_text(fake: FakeSlackApi, user: str = ALICE) -> str:
    """The user's published Home tab as JSON text ('' when none)."""
    view = fake.home_view(user)
    return json.dumps(view["blocks"]) if view else ""


def element(view: Json, block_id: str) -> Json:
    """The input element of a block in a view."""
    [block] = [b for b in view["blocks"] if b.get("block_id") == block_id]
    return dict(block["element"])


def imagine_another(fake: FakeSlackApi, rig: Rig, idea: str) -> str:
    """Run /imagine when #general already has threads; wait for this idea's result, return its root ts."""
    assert rig.driver.slash_command(COMMAND_IMAGINE, idea, ALICE, GENERAL).status == 200
    [root] = wait_for(lambda: [m for m in fake.messages(GENERAL) if idea in m.get("text", "")])
    wait_for(lambda: results(fake, str(root["ts"])))
    return str(root["ts"])


def client_for(fake: FakeSlackApi) -> WebClient:
    """A bot-token Web API client on the sandbox."""
    return WebClient(base_url=fake.api_url, token=fake.bot_token())


# --- the Home tab ----------------------------------------------------------------------------------------
def test_home_lists_recent_images_with_thread_links_saved_prompts_and_defaults(
    fake: FakeSlackApi, rig: Rig
) -> None:
    first = imagine(fake, rig, "a lighthouse at dusk")
    latest = results(fake, first)[-1]
    reroll = button_value(latest, ACTION_REROLL)
    assert rig.driver.block_action(ACTION_REROLL, reroll, ALICE, GENERAL, latest["ts"]).status == 200
    wait_for(lambda: len(results(fake, first)) == 2)
    second = imagine_another(fake, rig, "a red fox in the snow")
    rig.services.defaults.save_prompt(TEAM, ALICE, "a koi pond, ukiyo-e", "blurry")
    rig.services.defaults.set_user_defaults(TEAM, ALICE, UserDefaults("3:2", "watercolor"))
    fake.clear_calls()

    assert rig.driver.user_opens_home(ALICE).status == 200
    text = wait_for(lambda: home_text(fake))
    assert "lighthouse" in text and "red fox" in text and text.count("seed `") == 3
    for root in (first, second):
        assert f"/archives/{GENERAL}/p{root.replace('.', '')}|Open thread>" in text
    links = fake.calls_to("chat.getPermalink")
    assert sorted(c.params["message_ts"] for c in links) == sorted([first, second])  # one per thread
    assert "koi pond" in text and "blurry" in text
    assert "3:2" in text and "watercolor" in text
    [publish] = fake.calls_to("views.publish")
    assert publish.params["user_id"] == ALICE and publish.response["ok"]


def test_home_without_a_permalink_still_lists_the_image(fake: FakeSlackApi, rig: Rig) -> None:
    imagine(fake, rig, "a paper boat on a puddle")
    fake.fail_next("chat.getPermalink", "message_not_found", status=200)
    rig.driver.user_opens_home(ALICE)
    text = wait_for(lambda: home_text(fake))
    assert "paper boat" in text and "Open thread" not in text


def test_home_for_a_new_user_shows_empty_sections(fake: FakeSlackApi, rig: Rig) -> None:
    rig.driver.user_opens_home(BOB)
    text = wait_for(lambda: home_text(fake, BOB))
    assert "No images yet" in text and "Nothing saved yet" in text and "_not set_" in text


def test_the_messages_tab_publishes_nothing(fake: FakeSlackApi, rig: Rig) -> None:
    event = rig.driver.app_home_opened_event(ALICE, tab="messages")
    assert rig.driver.event(event).status == 200
    rig.driver.user_opens_home(BOB)  # a later delivery that does publish, to know the first was handled
    wait_for(lambda: fake.home_view(BOB))
    time.sleep(QUIET)
    assert fake.home_view(ALICE) is None
    assert [c.params["user_id"] for c in fake.calls_to("views.publish")] == [BOB]


def test_home_failures_are_logged_and_the_next_open_recovers(
    fake: FakeSlackApi, rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    def rename(old: str, new: str) -> None:  # a real storage failure: the table is gone for a while
        threads = rig.services.threads
        assert isinstance(threads, SqlThreadStore)
        with threads.sessions.begin() as session:
            session.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))

    rename("saved_prompts", "saved_prompts_away")
    rig.driver.user_opens_home(ALICE)
    wait_for(lambda: "cannot read the Home tab" in caplog.text)
    assert fake.calls_to("views.publish") == []
    rename("saved_prompts_away", "saved_prompts")
    fake.fail_next("views.publish", "internal_error", status=200)
    rig.driver.user_opens_home(ALICE)
    wait_for(lambda: "could not publish the Home tab" in caplog.text)
    assert fake.home_view(ALICE) is None
    rig.driver.user_opens_home(ALICE)
    assert "Your defaults" in wait_for(lambda: home_text(fake))


# --- the user's defaults modal ---------------------------------------------------------------------------
def test_edit_defaults_opens_a_prefilled_modal_and_saving_republishes_home(
    fake: FakeSlackApi, rig: Rig
) -> None:
    rig.services.defaults.set_user_defaults(TEAM, ALICE, UserDefaults("3:2", "watercolor", "text"))
    rig.driver.user_opens_home(ALICE)
    home = wait_for(lambda: fake.home_view(ALICE))
    value = button_value(home, ACTION_OPEN_DEFAULTS)
    clicked = rig.driver.block_action(ACTION_OPEN_DEFAULTS, value, ALICE, view_id=home["id"])
    assert clicked.status == 200
    [modal] = modals(fake, ALICE, VIEW_USER_DEFAULTS)  # opened before the ack: the trigger cannot expire
    [opened] = fake.calls_to("views.open")
    assert opened.response["ok"]
    assert element(modal, RATIO_BLOCK)["initial_option"]["value"] == "3:2"
    assert element(modal, STYLE_BLOCK)["initial_value"] == "watercolor"
    assert element(modal, DEFAULT_NEGATIVE_BLOCK)["initial_value"] == "text"
    assert "initial_value" not in element(modal, MODEL_BLOCK)

    values = settings_values("16:9", "ink wash", "blurry, watermark", "sagemaker:my-sdxl-endpoint")
    submitted = rig.driver.view_submission(VIEW_USER_DEFAULTS, values, user=ALICE)
    assert submitted.status == 200 and not submitted.json()  # an empty ack closes the modal
    text = wait_for(lambda: "ink wash" in home_text(fake) and home_text(fake))
    assert "16:9" in text and "blurry, watermark" in text and "sagemaker:my-sdxl-endpoint" in text
    assert "watercolor" not in text


@pytest.mark.parametrize(
    ("ratio", "model", "blocks"),
    [
        ("7:3", "", {RATIO_BLOCK}),
        (None, "local:all-MiniLM-L6-v2", {MODEL_BLOCK}),
        (None, "bedrock:", {MODEL_BLOCK}),
        (None, "stability.sd3-5-large-v1:0", {MODEL_BLOCK}),
        ("7:3", "offline please", {RATIO_BLOCK, MODEL_BLOCK}),
    ],
)
def test_invalid_defaults_are_field_errors_and_nothing_is_saved(
    fake: FakeSlackApi, rig: Rig, ratio: str | None, model: str, blocks: set[str]
) -> None:
    answer = rig.driver.view_submission(
        VIEW_USER_DEFAULTS, settings_values(ratio, "ink", model=model), user=ALICE
    )
    body = answer.json()
    assert answer.status == 200 and body["response_action"] == "errors"
    assert set(body["errors"]) == blocks
    if MODEL_BLOCK in blocks:
        assert body["errors"][MODEL_BLOCK].startswith("Image model")
    time.sleep(QUIET)
    assert fake.calls_to("views.publish") == []  # not stored, so Home is not republished


@pytest.mark.parametrize("model", ["offline", "bedrock:stability.sd3-5-large-v1:0", "sagemaker:sdxl"])
def test_each_image_model_form_is_accepted(fake: FakeSlackApi, rig: Rig, model: str) -> None:
    answer = rig.driver.view_submission(VIEW_USER_DEFAULTS, settings_values("1:1", model=model), user=BOB)
    assert answer.status == 200 and not answer.json()
    text = wait_for(lambda: model in home_text(fake, BOB) and home_text(fake, BOB))
    assert "1:1" in text


# --- channel defaults ------------------------------------------------------------------------------------
def test_a_member_sets_channel_defaults(fake: FakeSlackApi, rig: Rig) -> None:
    rig.services.defaults.set_channel_defaults(TEAM, GENERAL, UserDefaults(style="pixel art"))
    trigger = fake.issue_trigger(BOB)
    assert open_channel_settings(rig.services, client_for(fake), trigger, TEAM, GENERAL, BOB)
    [modal] = modals(fake, BOB, VIEW_CHANNEL_DEFAULTS)
    assert modal["private_metadata"] == GENERAL
    assert element(modal, STYLE_BLOCK)["initial_value"] == "pixel art"

    values = settings_values("9:16", "charcoal sketch", model="offline")
    answer = rig.driver.view_submission(VIEW_CHANNEL_DEFAULTS, values, user=BOB)
    assert answer.status == 200 and not answer.json()
    [note] = wait_for(lambda: fake.ephemerals(BOB))
    assert note["channel"] == GENERAL and "Channel defaults updated" in note["text"]
    assert "9:16" in note["text"] and "charcoal sketch" in note["text"]
    stored = rig.services.defaults.channel_defaults(TEAM, GENERAL)
    assert stored == UserDefaults("9:16", "charcoal sketch", None, "offline")


def test_invalid_channel_defaults_are_field_errors(fake: FakeSlackApi, rig: Rig) -> None:
    values = settings_values(model="bedrock")
    answer = rig.driver.view_submission(VIEW_CHANNEL_DEFAULTS, values, private_metadata=GENERAL, user=BOB)
    assert answer.json()["response_action"] == "errors" and MODEL_BLOCK in answer.json()["errors"]
    time.sleep(QUIET)
    assert fake.ephemerals() == [] and fake.calls_to("conversations.members") == []


def test_a_non_member_cannot_open_channel_settings(fake: FakeSlackApi, rig: Rig) -> None:
    trigger = fake.issue_trigger(CAROL)
    assert not open_channel_settings(rig.services, client_for(fake), trigger, TEAM, PRIVATE, CAROL)
    [modal] = modals(fake, CAROL)
    assert modal.get("callback_id") != VIEW_CHANNEL_DEFAULTS and "submit" not in modal
    assert "Only members" in json.dumps(modal["blocks"])
    assert fake.calls_to("views.update")[0].response["ok"]


def test_a_non_member_submission_is_refused(fake: FakeSlackApi, rig: Rig) -> None:
    values = settings_values("2:3", "neon")
    answer = rig.driver.view_submission(VIEW_CHANNEL_DEFAULTS, values, private_metadata=PRIVATE, user=CAROL)
    assert answer.status == 200
    [dm] = wait_for(lambda: [c for c in fake.calls_to("chat.postMessage") if c.params["channel"] == CAROL])
    [message] = fake.messages(dm.response["channel"])
    assert "Only members" in message["text"]
    assert fake.ephemerals(CAROL) == []
    assert rig.services.defaults.channel_defaults(TEAM, PRIVATE) == UserDefaults()


def test_imagine_defaults_opens_the_channel_modal(fake: FakeSlackApi, rig: Rig) -> None:
    answer = rig.driver.slash_command(COMMAND_IMAGINE, "--defaults", ALICE, GENERAL)
    assert answer.status == 200
    [modal] = wait_for(lambda: modals(fake, ALICE, VIEW_CHANNEL_DEFAULTS))
    assert modal["private_metadata"] == GENERAL
