"""Turns that work on the thread's image: kept seeds, image-to-image, chosen edits, buttons, a person's
picture and the avatar's icon, on the offline models and a real SQLite thread store (no retrieval)."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot.drawing.offline_edits import OfflineImageEditor
from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine.contact_sheet import contact_sheet
from bot.engine.conversation import Conversation
from bot.engine.image_edits import REFINE_EDITS
from bot.engine.ports import EditRequest, GeneratedImage, ImageRequest, ThreadRef
from bot.engine.turn_errors import BotError, ImageInputError
from bot.engine.turns import TurnOptions, TurnResult
from bot.writing.edit_choice import choose_edit
from bot.writing.offline_composer import OfflineComposer
from bot.writing.offline_describer import OfflineDescriber
from storage.db import create_db_engine, migrate, session_factory
from storage.thread_store import SqlThreadStore

TEAM = "T1"


class NoLibrary:
    """A prompt library with nothing in it (these turns are about images, not retrieval)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def search(self, query: str, k: int = 5) -> Sequence[Any]:
        """No hits; the query is remembered."""
        self.queries.append(query)
        return []


class RecordingEditor(OfflineImageEditor):
    """The offline editor, remembering every request it was given."""

    def __init__(self) -> None:
        self.requests: list[EditRequest] = []

    def edit(self, request: EditRequest) -> GeneratedImage:
        """Remember the request, then edit offline."""
        self.requests.append(request)
        return super().edit(request)


class RecordingPreview(OfflinePreviewImageModel):
    """The offline image model, remembering every request (and whether it may draw from an image)."""

    def __init__(self, from_image: bool = True) -> None:
        self.requests: list[ImageRequest] = []
        self._from_image = from_image

    @property
    def draws_from_image(self) -> bool:
        """As configured."""
        return self._from_image

    def generate(self, request: ImageRequest) -> list[GeneratedImage]:
        """Remember the request, then draw the preview."""
        self.requests.append(request)
        return super().generate(request)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Conversation, RecordingEditor, RecordingPreview, NoLibrary]]:
    """The engine over offline models with recording editor and image model, on SQLite."""
    engine = create_db_engine(f"sqlite:///{tmp_path / 'imagine.db'}")
    migrate(engine)
    editor, images, library = RecordingEditor(), RecordingPreview(), NoLibrary()
    conversation = Conversation(
        library,
        OfflineComposer(None),
        images,
        SqlThreadStore(session_factory(engine)),
        tmp_path / "images",
        contact_sheet=contact_sheet,
        editor=editor,
        describer=OfflineDescriber(),
    )
    yield conversation, editor, images, library
    engine.dispose()


def start(conversation: Conversation, idea: str = "a cat wearing a hat", seed: int = 77) -> TurnResult:
    """A new thread drawn with a known seed."""
    return conversation.start(ThreadRef(TEAM, "C1", "1.0"), "U1", idea, TurnOptions(seed=seed))


def png(size: tuple[int, int], colour: str = "white") -> bytes:
    """PNG bytes of a plain picture."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, format="PNG")
    return out.getvalue()


def test_a_refinement_keeps_the_seed_and_draws_from_the_latest_image(parts: Any) -> None:
    conversation, _, images, _ = parts
    first = start(conversation)
    refined = conversation.refine(TEAM, first.thread.id, "make it watercolor")
    request = images.requests[-1]
    assert request.seed == 77 and refined.turn.params["seed"] == 77
    assert request.init_image == first.images[0].path.read_bytes()  # the request carries that image
    assert request.strength == 0.7  # a new style moves further than a tweak
    assert refined.turn.params["how"]["kind"] == "image-to-image"
    tweak = conversation.refine(TEAM, first.thread.id, "brighter")
    assert images.requests[-1].strength == 0.35 and tweak.turn.params["seed"] == 77
    assert images.requests[-1].init_image == refined.images[0].path.read_bytes()
    fresh = conversation.refine(TEAM, first.thread.id, "start over")
    assert images.requests[-1].init_image is None and fresh.turn.params["seed"] != 77
    assert fresh.turn.params["how"] == {"kind": "new-seed"}
    later = conversation.refine(TEAM, first.thread.id, "more detail")
    assert later.turn.params["seed"] == fresh.turn.params["seed"]  # the new seed is the thread's now


def test_a_model_that_cannot_draw_from_an_image_still_keeps_the_seed(parts: Any, tmp_path: Path) -> None:
    conversation, _, images, _ = parts
    images._from_image = False
    first = start(conversation)
    refined = conversation.refine(TEAM, first.thread.id, "make it watercolor")
    assert images.requests[-1].init_image is None and images.requests[-1].seed == 77
    assert refined.turn.params["how"] == {"kind": "same-seed", "no_image_to_image": True, "seed": 77}


@pytest.mark.parametrize(
    "instruction",
    ["swap the hat for a crown", "make the cat red", "remove the text", "sharper", "remove the background"],
)
def test_a_refinement_may_edit_the_image_instead(parts: Any, instruction: str) -> None:
    chosen = choose_edit(instruction, REFINE_EDITS)  # the words' choice (tests/writing/test_edit_choice.py)
    operation, target, replacement = chosen.edit, chosen.target, chosen.replacement
    conversation, editor, images, _ = parts
    first = start(conversation)
    drawn = len(images.requests)
    edited = conversation.refine(TEAM, first.thread.id, instruction)
    (request,) = editor.requests  # exactly one image call, and no drawing
    assert len(images.requests) == drawn
    assert request.operation == operation and request.image == first.images[0].path.read_bytes()
    assert (request.target, request.prompt if replacement else replacement) == (target, replacement)
    assert request.seed == 77 and edited.turn.params["seed"] == 77  # the thread keeps its seed
    how = edited.turn.params["how"]
    assert how["kind"] == operation and how["source"] == first.images[0].record.sha256
    assert edited.turn.kind == "refine" and edited.turn.image_model == "offline"
    assert "offline image edit (no image model was called)" in edited.labels
    if operation == "search_replace":
        assert "crown" in (edited.turn.prompt or "") and "hat" not in (edited.turn.prompt or "")


def test_wider_outpaints_to_the_new_frame(parts: Any) -> None:
    conversation, editor, _, _ = parts
    first = start(conversation)
    wide = conversation.refine(TEAM, first.thread.id, "wider")
    (request,) = editor.requests
    assert request.operation == "outpaint" and request.expand == (298, 299, 0, 0)  # 768 px to 16:9
    assert (wide.images[0].record.width, wide.images[0].record.height) == (1365, 768)
    assert wide.turn.params["aspect_ratio"] == "16:9"
    again = conversation.refine(TEAM, first.thread.id, "--ar 9:16")
    assert editor.requests[-1].expand[2:] != (0, 0) and again.turn.params["aspect_ratio"] == "9:16"


def test_variations_and_the_pick_draw_subtly_from_their_image(parts: Any) -> None:
    conversation, _, images, _ = parts
    first = start(conversation)
    conversation.vary(TEAM, first.thread.id)
    assert images.requests[-1].strength == 0.3 and images.requests[-1].init_image is not None
    brainstorm = conversation.brainstorm(ThreadRef(TEAM, "C1", "2.0"), "U1", "robots", count=3)
    conversation.pick(TEAM, brainstorm.thread.id, 2)
    assert images.requests[-1].init_image == brainstorm.images[1].path.read_bytes()
    assert images.requests[-1].strength == 0.35
    assert images.requests[-1].seed == brainstorm.turn.params["candidates"][1]["seed"]


def test_upscale_and_remove_background_buttons(parts: Any) -> None:
    conversation, editor, _, _ = parts
    first = start(conversation)
    second = conversation.refine(TEAM, first.thread.id, "brighter")
    up = conversation.upscale(TEAM, first.thread.id, first.turn.id)  # the image the button is under
    assert editor.requests[-1].image == first.images[0].path.read_bytes()
    assert (up.turn.kind, up.images[0].record.width) == ("upscale", 3072)
    assert up.turn.prompt == first.turn.prompt  # Re-roll and Edit prompt keep working after it
    cut = conversation.remove_background(TEAM, first.thread.id)  # the latest image: the upscale
    assert editor.requests[-1].image == up.images[0].path.read_bytes()
    with Image.open(cut.images[0].path) as image:
        assert image.mode == "RGBA" and cut.turn.kind == "cutout"
    with pytest.raises(ImageInputError, match="cannot be upscaled again"):
        conversation.upscale(TEAM, first.thread.id, up.turn.id)
    with pytest.raises(BotError, match="no image in this thread"):
        conversation.upscale(TEAM, first.thread.id, 999_999)
    second.images[0].path.unlink()
    with pytest.raises(BotError, match="no longer on the bot's disk"):
        conversation.remove_background(TEAM, first.thread.id, second.turn.id)


def test_a_persons_picture_as_sketch_style_or_description(parts: Any) -> None:
    conversation, editor, _, library = parts
    first = start(conversation)
    picture = conversation.add_picture(TEAM, first.thread.id, "U2", png((600, 400)), "dog_sketch.png", "")
    assert (picture.kind, picture.text, picture.images[0].model_id) == (
        "picture",
        "dog_sketch.png",
        "slack:picture",
    )
    sketch = conversation.use_picture(TEAM, first.thread.id, int(picture.id or 0), "sketch")
    assert editor.requests[-1].operation == "sketch" and editor.requests[-1].image == png((600, 400))
    assert editor.requests[-1].prompt == first.turn.prompt and sketch.turn.kind == "sketch"
    style = conversation.use_picture(TEAM, first.thread.id, int(picture.id or 0), "style")
    assert editor.requests[-1].aspect_ratio == "3:2"  # the thread's frame, which the sketch set
    assert (style.images[0].record.width, style.images[0].record.height) == (768, 512)
    shown: list[int] = []
    described = conversation.describe_picture(
        TEAM, first.thread.id, int(picture.id or 0), on_hits=lambda thread, hits: shown.append(len(hits))
    )
    assert described.turn.text == "dog sketch, pencil sketch, white tones" == library.queries[-1]
    assert shown == [0] and described.turn.kind == "describe"
    assert described.labels[0].startswith("description written offline")
    with pytest.raises(BotError, match="no image"):
        conversation.use_picture(TEAM, first.thread.id, int(first.turn.id or 0), "sketch")  # not a picture


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"%PDF-1.7 not a picture", "not a picture I can read"),
        (png((40, 400)), "at least 64 px"),
        (png((1000, 300)), "too wide"),
        (b"\x89PNG" + b"0" * (10 * 1024 * 1024), "I take pictures up to 10.0 MB"),
    ],
)
def test_pictures_that_cannot_be_used_are_refused_plainly(parts: Any, data: bytes, problem: str) -> None:
    conversation = parts[0]
    first = start(conversation)
    with pytest.raises(ImageInputError, match=problem):
        conversation.add_picture(TEAM, first.thread.id, "U2", data, "scan.png")


def test_the_winner_becomes_a_square_transparent_icon(parts: Any) -> None:
    conversation, editor, _, _ = parts
    brainstorm = conversation.brainstorm(ThreadRef(TEAM, "C1", "3.0"), "U1", "friendly robots", count=2)
    conversation.pick(TEAM, brainstorm.thread.id, 1)
    icon = conversation.make_icon(TEAM, brainstorm.thread.id)
    assert [r.operation for r in editor.requests] == ["upscale", "remove_background"]
    with Image.open(icon.images[0].path) as image:
        assert image.mode == "RGBA" and image.size[0] == image.size[1] >= 1024
        assert image.getchannel("A").getextrema()[0] == 0  # something is see-through
    assert icon.turn.kind == "icon" and icon.contact_sheet is not None and icon.contact_sheet.exists()
    assert (len(icon.images), icon.images_drawn) == (1, 2)  # the quota counts the upscale too
    _, turns = conversation.history(TEAM, brainstorm.thread.id)
    assert [turn.kind for turn in turns] == ["brainstorm", "pick", "upscale", "icon"]
