"""The demo's script: people act in the sandbox, each step waits for what the channel should show."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bot.engine.turn_errors import BotError
from bot.entry.cli.demo.transcript import Action, ChannelLog, Json, Renderer, SavedImage, png_size, shown_path
from bot.slack.ids import (
    ACTION_PICK_WINNER,
    ACTION_REROLL,
    ACTION_UPSCALE,
    ACTION_USE_HIT,
    ACTION_USE_SKETCH,
    ACTION_VOTE,
    COMMAND_AVATAR,
    COMMAND_IMAGINE,
)
from sandbox.slack_models import ALICE, BOB, DEFAULT_TEAM_ID, GENERAL

if TYPE_CHECKING:
    from bot.slack.services import Services
    from sandbox.slack_api import FakeSlackApi
    from sandbox.slack_driver import SlackDriver

T = TypeVar("T")
BeforeStep = Callable[[int, "FakeSlackApi"], None]

IDEA = "a cartoon of a little dog"
REFINEMENT = "make it watercolor, no text"
THEME = "friendly robots for the data team"
SKETCH = "dog-sketch.png"
SKETCH_CAPTION = "here's my sketch of the pose"
STEPS = 9
POLL_S = 0.05
ERROR_MARKS = (":x:", ":warning:", ":no_entry_sign:", ":wave:")  # how the app's error replies begin


class DemoError(BotError):
    """A step of the demo did not show what a user should have seen."""


def block_ids(message: Json) -> list[str]:
    """The block ids of a message."""
    return [str(block.get("block_id", "")) for block in message.get("blocks") or []]


def button_value(message: Json, action_id: str, block_id: str | None = None) -> str | None:
    """The value of a button in a message, if it has one."""
    for block in message.get("blocks") or []:
        for element in [*(block.get("elements") or []), block.get("accessory") or {}]:
            if element.get("action_id") == action_id and block_id in (None, block.get("block_id")):
                return str(element.get("value") or "")
    return None


@dataclass(frozen=True)
class StepRecord:
    """How one step went."""

    number: int
    title: str
    seconds: float
    problem: str | None = None


class Script:
    """The conversation: people act through the driver, and each step waits for what they should see."""

    def __init__(
        self,
        fake: FakeSlackApi,
        driver: SlackDriver,
        services: Services,
        out: Path,
        timeout: float,
        idea: str = IDEA,
        before_step: BeforeStep | None = None,
    ) -> None:
        """Play against `fake` through `driver`; images go to `out`."""
        self.fake, self.driver, self.services = fake, driver, services
        self.out, self.timeout, self.idea, self.before_step = out, timeout, idea, before_step
        self.actions: list[Action] = []
        self.steps: list[StepRecord] = []
        self.images: dict[str, SavedImage] = {}
        self.progress: Callable[[str], None] = lambda _: None
        self._step = (0, "")
        self._since = 0.0
        with fake.state() as ws:
            names = {user.id: user.name for user in ws.users.values()}
            names |= {channel.id: channel.name for channel in ws.channels.values() if channel.name}
        self.renderer = Renderer(names, fake.team().bot_user_id, self.images)

    # the script ------------------------------------------------------------------------------------------
    def play(self, progress: Callable[[str], None] = lambda _: None) -> None:
        """Every step in order; DemoError at the first one that fails."""
        self.progress = progress
        with self.step(1, f"alice: /imagine {self.idea}", "start"):
            self.act(ALICE, f"types /imagine {self.idea}")
            root = self.command(COMMAND_IMAGINE, self.idea)
            self.wait("library hits in the thread", lambda: self.in_thread(root, "hit_1"))
            self.result(root)
        with self.step(2, f"bob replies: {REFINEMENT}", "refine"):
            self.driver.user_posts(GENERAL, REFINEMENT, BOB, thread_ts=root)
            refined = self.renderer.one_line(self.result(root))
            if "watercolor" not in refined.lower():
                raise self.fail("the refined prompt does not mention watercolor")
            if "Kept seed" not in refined:
                raise self.fail("the refinement did not keep the thread's seed")
        with self.step(3, "alice clicks Use #2", "use-2"):
            self.click(ALICE, self.in_thread(root, "hit_1")[0], ACTION_USE_HIT, "hit_2", "Use #2")
            self.result(root)
        with self.step(4, "alice clicks Re-roll", "reroll"):
            self.click(ALICE, self.in_thread(root, "result_actions")[-1], ACTION_REROLL, None, "Re-roll")
            self.result(root)
        with self.step(5, "alice clicks Upscale", "upscale"):
            self.click(ALICE, self.in_thread(root, "result_actions")[-1], ACTION_UPSCALE, None, "Upscale")
            upscaled = self.result(root)
            if "Upscaled to" not in self.renderer.one_line(upscaled):
                raise self.fail("the upscaled image does not say it was upscaled")
        with self.step(6, "bob posts a sketch, alice clicks Use as sketch", "sketch"):
            self.act(BOB, f"posts {SKETCH} into the thread", root)
            self.driver.user_posts_file(GENERAL, SKETCH, demo_sketch(), BOB, SKETCH_CAPTION, root)
            [choices] = self.wait(
                "the picture's choices", lambda: self._newer(self.in_thread(root, "picture_actions"))
            )
            self.click(ALICE, choices, ACTION_USE_SKETCH, None, "Use as sketch")
            drawn = self.result(root)
            if "as a sketch" not in self.renderer.one_line(drawn):
                raise self.fail("the drawing does not say it followed the sketch")
        with self.step(7, f"alice: /avatar {THEME}", "avatar"):
            self.act(ALICE, f"types /avatar {THEME}")
            avatar = self.command(COMMAND_AVATAR, THEME)
            [candidates] = self.wait(
                "avatar candidates", lambda: self.in_thread(avatar, "brainstorm_actions")
            )
            self.image(avatar, "contact sheet")
        with self.step(8, "alice and bob react :three:, bob clicks Vote #5", "votes"):
            self.vote(avatar, candidates)
        with self.step(9, "alice clicks Pick winner: the winner, then its icon", "winner"):
            self.click(ALICE, candidates, ACTION_PICK_WINNER, None, "Pick winner")
            winner = self.wait("winner announcement", lambda: self._winner(avatar))
            if "#3 wins" not in winner:
                raise self.fail(f"expected #3 to win with 2 votes, the app said: {winner}")
            self.result(avatar)
            self.wait("the icon, background removed", lambda: self._icon(avatar))

    def vote(self, avatar: str, candidates: Json) -> None:
        """Votes by reaction and by button, checked in the tally the app keeps."""
        vote_5 = button_value(candidates, ACTION_VOTE, "candidate_5") or ""
        thread_id = int(vote_5.split(":")[0]) if vote_5[:1].isdigit() else 0
        for user in (ALICE, BOB):
            self.act(user, "reacts :three:", avatar)
            self.driver.user_reacts(GENERAL, str(candidates["ts"]), "three", user)
        self.click(BOB, candidates, ACTION_VOTE, "candidate_5", "Vote #5")
        self.wait("confirmation of bob's vote", lambda: self._newer(self.fake.ephemerals(BOB)))
        expected = {3: 2, 5: 1}
        self.wait(
            "tally of 2 votes for #3 and 1 for #5",
            lambda: self.services.feedback.tally(DEFAULT_TEAM_ID, thread_id) == expected or None,
        )

    # steps and waiting -----------------------------------------------------------------------------------
    @contextmanager
    def step(self, number: int, title: str, slug: str) -> Iterator[None]:
        """Run one step: record its time and any problem, and save the images it uploaded."""
        self._step = (number, title)
        self.progress(f"step {number}/{STEPS}: {title}")
        if self.before_step is not None:
            self.before_step(number, self.fake)
        self._since = float(self._ts())
        started = time.monotonic()
        try:
            yield
        except DemoError as exc:
            self.steps.append(StepRecord(number, title, time.monotonic() - started, str(exc)))
            raise
        finally:
            self._save_uploads(number, slug)
        self.steps.append(StepRecord(number, title, time.monotonic() - started))

    def fail(self, detail: str) -> DemoError:
        """An error naming the current step."""
        number, title = self._step
        return DemoError(f"step {number} ({title}): {detail}")

    def wait(self, what: str, probe: Callable[[], T | None]) -> T:
        """Poll until `probe` finds something; fail on an error reply from the app or after the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            found = probe()
            if found:
                return found
            self._raise_on_error_reply()
            if time.monotonic() >= deadline:
                raise self.fail(f"no {what} after {self.timeout:g} s")
            time.sleep(POLL_S)

    def _raise_on_error_reply(self) -> None:
        """DemoError when the app answered with an error since the step began, publicly or privately."""
        for message in self._newer(self.fake.messages(GENERAL, include_replies=True)):
            if _is_error(message):
                raise self.fail(f"the app replied: {self.renderer.one_line(message)}")
        for note in self._newer(self.fake.ephemerals()):
            if _is_error(note):
                who = self.renderer.names.get(str(note.get("user")), "someone")
                raise self.fail(f"the app told {who}: {self.renderer.one_line(note)}")

    def _newer(self, messages: list[Json]) -> list[Json]:
        """The messages (or ephemerals) posted since the step began."""
        return [m for m in messages if float(m.get("ts") or m.get("message_ts") or 0) > self._since]

    # what people do --------------------------------------------------------------------------------------
    def act(self, user: str, text: str, thread_ts: str | None = None) -> None:
        """Note an action for the transcript, e.g. `alice clicks [Use #2]`."""
        self.actions.append(Action(self._ts(), thread_ts, f"{self.renderer.names.get(user, user)} {text}"))

    def command(self, command: str, text: str) -> str:
        """Alice runs a slash command in #general; returns the ts of the thread root the app posts."""
        status = self.driver.slash_command(command, text, ALICE, GENERAL).status
        if status != 200:
            raise self.fail(f"the app answered the slash command with HTTP {status}")
        roots = self.wait("thread root in #general", self._roots)
        return str(roots[0]["ts"])

    def click(self, user: str, message: Json, action_id: str, block_id: str | None, label: str) -> None:
        """A person clicks a button of a message."""
        value = button_value(message, action_id, block_id)
        if value is None:
            raise self.fail(f"the message has no [{label}] button")
        thread_ts = str(message.get("thread_ts") or message["ts"])
        self.act(user, f"clicks [{label}]", thread_ts)
        status = self.driver.block_action(action_id, value, user, GENERAL, str(message["ts"])).status
        if status != 200:
            raise self.fail(f"the app answered the click with HTTP {status}")

    # what the channel shows ------------------------------------------------------------------------------
    def in_thread(self, root_ts: str, block_id: str) -> list[Json]:
        """Replies in a thread that carry a block id (hit_1, result_actions, brainstorm_actions...)."""
        return [m for m in self.fake.messages(GENERAL, root_ts)[1:] if block_id in block_ids(m)]

    def result(self, root_ts: str) -> Json:
        """Wait for a new result message with its image in the thread."""
        found = self.wait(
            "new result in the thread", lambda: self._newer(self.in_thread(root_ts, "result_actions"))
        )
        self.image(root_ts, "image")
        return found[-1]

    def image(self, root_ts: str, what: str) -> None:
        """Fail unless an image was uploaded into the thread during this step."""
        if not [m for m in self._newer(self.fake.messages(GENERAL, root_ts)) if m.get("files")]:
            raise self.fail(f"no {what} was uploaded into the thread")

    def _icon(self, root_ts: str) -> Json | None:
        """The app's icon message in a thread, once posted (with its image)."""
        found = [
            m for m in self._newer(self.in_thread(root_ts, "result_actions")) if "as an icon" in m["text"]
        ]
        return found[-1] if found else None

    def _roots(self) -> list[Json]:
        """The app's top-level messages since the step began (the thread root of a slash command)."""
        return [m for m in self._newer(self.fake.messages(GENERAL)) if m.get("bot_id")]

    def _winner(self, root_ts: str) -> str | None:
        """The text of the winner announcement in a thread, once posted."""
        texts = [self.renderer.one_line(m) for m in self._newer(self.fake.messages(GENERAL, root_ts))]
        return next((text for text in texts if " wins" in text or "going with" in text), None)

    def _ts(self) -> str:
        """A fresh timestamp from the sandbox clock (orders actions among messages)."""
        with self.fake.state() as ws:
            return ws.next_ts()

    def _save_uploads(self, number: int, slug: str) -> None:
        """Write a step's uploads as NN-slug.png, or NN-slug-sheet.png and NN-slug-1.png ... for several."""
        new = [f for f in self.fake.uploads() if str(f["id"]) not in self.images]
        sheets = [f for f in new if str(f.get("name") or "").startswith("sheet-")]
        others = [f for f in new if f not in sheets]
        named = [(f, f"{slug}-sheet") for f in sheets]
        named += [(f, slug if len(others) == 1 else f"{slug}-{n}") for n, f in enumerate(others, start=1)]
        for upload, name in named:
            data = bytes(upload.get("data") or b"")
            suffix = Path(str(upload.get("name") or "")).suffix or ".png"
            path = self.out / f"{number:02d}-{name}{suffix}"
            try:
                path.write_bytes(data)
            except OSError as exc:
                raise DemoError(f"cannot write {path}: {exc.strerror or exc}") from None
            size = png_size(data)
            self.images[str(upload["id"])] = SavedImage(path, size, "PNG" if size else suffix[1:].upper())

    # the transcript --------------------------------------------------------------------------------------
    def transcript(self, elapsed: float) -> str:
        """The channel as people saw it, then a summary of the steps."""
        top = self.fake.messages(GENERAL)
        replies = {
            str(m["ts"]): self.fake.messages(GENERAL, str(m["ts"]))[1:] for m in top if m.get("reply_count")
        }
        ephemerals = [e for e in self.fake.ephemerals() if e.get("channel") == GENERAL]
        log = ChannelLog("general", top, replies, ephemerals, self.actions)
        lines = [
            "imagine-bot demo: the real Slack app (HTTP mode) in a sandbox workspace on 127.0.0.1, offline",
            "models: offline composer + offline preview images; nothing leaves this machine",
            "",
            *self.renderer.channel(log),
            "",
            "─" * 40,
        ]
        for record in self.steps:
            done = f"✔ step {record.number}  {record.title:<58} {record.seconds:5.1f} s"
            lines.append(f"✘ {record.problem}" if record.problem else done)
        passed = sum(1 for record in self.steps if not record.problem)
        lines.append(f"{passed} of {STEPS} steps passed in {elapsed:.1f} s")
        names = [image.path.name for image in self.images.values()]
        listed = ", ".join(names) if len(names) <= 4 else f"{names[0]}, {names[1]} … {names[-1]}"
        images = f"{len(names)} image{'s' * (len(names) != 1)} ({listed})" if names else "no images"
        lines.append(f"{images} and transcript.txt written to {shown_path(self.out)}/")
        return "\n".join(lines) + "\n"


def demo_sketch() -> bytes:
    """The sketch bob posts: a little dog drawn in a few dark strokes on white paper (PNG)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 480), (250, 250, 246))
    draw = ImageDraw.Draw(image)
    ink, width = (35, 35, 40), 6
    draw.ellipse((200, 200, 440, 330), outline=ink, width=width)  # body
    draw.ellipse((400, 120, 510, 220), outline=ink, width=width)  # head
    draw.polygon([(410, 135), (395, 80), (440, 125)], outline=ink, width=width)  # ear
    for x in (230, 290, 350, 400):  # legs
        draw.line((x, 315, x - 5, 400), fill=ink, width=width)
    draw.line((205, 250, 140, 190), fill=ink, width=width)  # tail
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _is_error(message: Json) -> bool:
    """True for the app's error replies (❌, ⚠️ flag errors, quota and not-in-channel notes)."""
    first = (message.get("blocks") or [{}])[0]
    text = str((first.get("text") or {}).get("text") or "") if first.get("type") == "section" else ""
    return text.startswith(ERROR_MARKS)
