"""The conversation engine end to end on the embedded stack: real retrieval, SQL memory, offline models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from bot.drawing.offline_images import OfflinePreviewImageModel
from bot.engine.contact_sheet import contact_sheet
from bot.engine.conversation import Conversation, direction_of
from bot.engine.ports import ThreadRef
from bot.engine.turn_errors import BotError
from bot.engine.turns import ThreadNotFoundError, TurnOptions
from bot.writing.offline_composer import OfflineComposer
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.search import Retriever
from storage.db import create_db_engine, migrate, session_factory
from storage.thread_store import SqlThreadStore

TEAM = "T1"


@pytest.fixture
def engine_parts(small_index: Path, tmp_path: Path) -> Iterator[tuple[Retriever, str]]:
    """A retriever over the module index and a SQLite URL in this test's folder."""
    retriever = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(small_index))
    yield retriever, f"sqlite:///{tmp_path / 'imagine.db'}"
    retriever.close()


def make_conversation(retriever: Retriever, url: str, images: Path) -> tuple[Conversation, Engine]:
    """The engine over offline models and a freshly opened database."""
    engine = create_db_engine(url)
    migrate(engine)
    store = SqlThreadStore(session_factory(engine))
    conversation = Conversation(
        retriever,
        OfflineComposer(None),
        OfflinePreviewImageModel(),
        store,
        images,
        contact_sheet=contact_sheet,
    )
    return conversation, engine


def test_three_turns_survive_a_restart(engine_parts: tuple[Retriever, str], tmp_path: Path) -> None:
    retriever, url = engine_parts
    conversation, engine = make_conversation(retriever, url, tmp_path / "images")
    first = conversation.start(
        ThreadRef(TEAM, "C1", "1.0"),
        "U1",
        "a cartoon of a little dog",
        TurnOptions(seed=7, aspect_ratio="3:2"),
    )
    assert len(first.hits) == 5 and first.drafts[0].prompt
    assert "dog" in first.drafts[0].prompt.lower()
    assert first.images[0].path.exists() and first.images[0].record.seed == 7
    assert first.chat_offline and first.image_offline and len(first.labels) == 2
    second = conversation.refine(TEAM, first.thread.id, "make it watercolor")
    assert "watercolor" in second.drafts[0].prompt.lower()
    assert second.drafts[0].aspect_ratio == "3:2"  # the --ar of the first turn carries over
    engine.dispose()  # a process restart: nothing but the database file survives

    again, engine = make_conversation(retriever, url, tmp_path / "images")
    third = again.refine(TEAM, first.thread.id, "no text")
    assert "text" in third.drafts[0].negative_prompt.lower()
    assert "watercolor" in third.drafts[0].prompt.lower()
    thread, turns = again.history(TEAM, first.thread.id)
    assert thread.idea == "a cartoon of a little dog" and thread.mode == "imagine"
    assert [turn.kind for turn in turns] == ["start", "refine", "refine"]
    assert all(turn.images for turn in turns) and turns[2].hits[:5] == turns[0].hits  # numbers stay
    engine.dispose()


def test_a_refinement_retrieves_references_for_its_new_direction(
    engine_parts: tuple[Retriever, str], tmp_path: Path
) -> None:
    retriever, url = engine_parts
    conversation, engine = make_conversation(retriever, url, tmp_path / "images")
    first = conversation.start(ThreadRef(TEAM, "C1", "1.0"), "U1", "a cartoon of a little dog")
    second = conversation.refine(TEAM, first.thread.id, "make it a watercolor painting")
    shown = {hit.prompt for hit in first.hits}
    assert 1 <= len(second.new_hits) <= 3
    assert [h.number for h in second.new_hits] == list(range(6, 6 + len(second.new_hits)))
    assert not shown & {h.prompt for h in second.new_hits}  # only prompts the thread has not seen
    direction = [h.prompt for h in retriever.search("a cartoon of a little dog, a watercolor painting", 8)]
    assert [h.prompt for h in second.new_hits] == [p for p in direction if p not in shown][:3]
    assert second.hits == first.hits + second.new_hits  # stored with the turn: Use #6 works
    number = second.new_hits[0].number
    used = conversation.use_hit(TEAM, first.thread.id, number)
    assert used.turn.kind == "use_hit" and used.drafts[0].prompt
    third = conversation.refine(TEAM, first.thread.id, f"more like #{number}")
    assert third.turn.kind == "refine" and third.new_hits == ()  # it points at a hit the thread has
    fourth = conversation.refine(TEAM, first.thread.id, "no text")
    assert fourth.new_hits == () and "text" in fourth.drafts[0].negative_prompt  # nothing new to look for
    fifth = conversation.refine(TEAM, first.thread.id, "as an oil painting")
    assert fifth.new_hits and min(h.number for h in fifth.new_hits) == second.hits[-1].number + 1
    engine.dispose()


@pytest.mark.parametrize(
    ("instruction", "direction"),
    [
        ("make it watercolor, no text", "watercolor"),
        ("more like a movie poster", "a movie poster"),
        ("make it look like a 90s video game", "a 90s video game"),
        ("swap the hat for a crown", "swap the hat for a crown"),
        ("remove the background, make it brighter", "brighter"),
        ("no text", ""),
        ("without people", ""),
        ("more like #2", ""),
    ],
)
def test_a_refinement_searches_what_it_asks_to_see(instruction: str, direction: str) -> None:
    assert direction_of(instruction) == direction


def test_reroll_vary_use_and_edit(engine_parts: tuple[Retriever, str], tmp_path: Path) -> None:
    retriever, url = engine_parts
    conversation, engine = make_conversation(retriever, url, tmp_path / "images")
    first = conversation.start(
        ThreadRef(TEAM, "C1", "2.0"), "U1", "a lighthouse in a storm", TurnOptions(seed=11)
    )
    rerolled = conversation.reroll(TEAM, first.thread.id)
    assert rerolled.drafts[0].prompt == first.drafts[0].prompt and rerolled.turn.chat_model is None
    varied = conversation.vary(TEAM, first.thread.id)
    assert varied.images[0].record.seed == rerolled.images[0].record.seed  # same seed as the latest turn
    used = conversation.use_hit(TEAM, first.thread.id, 2)
    assert used.turn.kind == "use_hit"
    edited = conversation.edit(TEAM, first.thread.id, "  a red lighthouse, ink drawing ")
    assert edited.drafts[0].prompt == "a red lighthouse, ink drawing"
    with pytest.raises(BotError, match="#9"):
        conversation.use_hit(TEAM, first.thread.id, 9)
    with pytest.raises(ThreadNotFoundError):
        conversation.refine("T-other", first.thread.id, "make it blue")  # another team sees nothing
    engine.dispose()


def test_brainstorm_and_pick(engine_parts: tuple[Retriever, str], tmp_path: Path) -> None:
    retriever, url = engine_parts
    conversation, engine = make_conversation(retriever, url, tmp_path / "images")
    board = conversation.brainstorm(ThreadRef(TEAM, "C2", "3.0"), "U1", "a friendly robot mascot", count=4)
    assert len(board.drafts) == 4 and len(board.images) == 4
    assert len({draft.prompt for draft in board.drafts}) == 4
    assert board.contact_sheet is not None and board.contact_sheet.exists()
    winner = conversation.pick(TEAM, board.thread.id, 3)
    assert winner.turn.kind == "pick" and winner.images
    with pytest.raises(BotError, match="#7"):
        conversation.pick(TEAM, board.thread.id, 7)
    engine.dispose()
