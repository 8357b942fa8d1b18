"""SQL stores on SQLite (always) and Postgres (when given): round trips, tenancy, races, restarts."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from threading import Barrier
from typing import TypeVar

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from bot.engine.ports import ImageRecord, ThreadRef, ThreadStore, TurnRecord, UserDefaults
from storage.db import create_db_engine, migrate, session_factory
from storage.db_errors import NotFoundError
from storage.defaults_store import SqlDefaultsStore
from storage.feedback_store import FeedbackTally, SqlFeedbackStore
from storage.ledger import SqlEventLedger, SqlUsageCounters
from storage.models import Image, Thread, Turn, Workspace
from storage.thread_store import SqlThreadStore
from tests.storage.storage_fixtures import db_url, engine, postgres_admin_url, sessions  # noqa: F401

T = TypeVar("T")
WORKERS = 8
REF_A = ThreadRef("TA", "C1", "1712345678.000100")


def _image(n: int, slack_file_id: str | None = None) -> ImageRecord:
    """A distinct image record (sha256-like hex id)."""
    return ImageRecord(f"{n:064x}", 4_294_967_000 + n, "offline", 1024, 576, f"/img/{n}.png", slack_file_id)


def _turn(thread_id: int, kind: str = "start", images: tuple[ImageRecord, ...] = ()) -> TurnRecord:
    """A turn with every field set, including nested JSON."""
    return TurnRecord(
        thread_id=thread_id,
        kind=kind,
        role="user",
        text="a cartoon of a little dog — ünïcödé",
        hits=[{"number": 1, "prompt": "a dog, by artist", "source": None, "score": 0.83}],
        prompt="cute cartoon dog, flat colors",
        negative_prompt="blurry",
        params={"aspect_ratio": "16:9", "seed": 7, "nested": {"a": [1, 2.5, None, True]}},
        chat_model="offline",
        image_model="offline",
        input_tokens=120,
        output_tokens=45,
        duration_ms=321,
        images=images,
    )


def _race(worker: Callable[[], T]) -> list[T]:
    """Run `worker` in WORKERS threads released together; return their results."""
    barrier = Barrier(WORKERS)

    def run() -> T:
        barrier.wait()
        return worker()

    with ThreadPoolExecutor(WORKERS) as pool:
        futures = [pool.submit(run) for _ in range(WORKERS)]
        return [future.result(timeout=60) for future in futures]


def _count(sessions: sessionmaker[Session], model: type[object]) -> int:  # noqa: F811
    """Rows in a table."""
    with sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_store_satisfies_the_port_structurally(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    store: ThreadStore = SqlThreadStore(sessions)
    assert store.find_thread("TA", 1) is None


def test_thread_and_turn_round_trip(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    store = SqlThreadStore(sessions)
    before = datetime.now(UTC)
    thread = store.open_thread(REF_A, "U1", "imagine", "a little dog")
    assert thread.ref == REF_A and thread.owner_user_id == "U1" and thread.mode == "imagine"
    assert thread.created_utc.tzinfo == UTC and before - timedelta(seconds=5) <= thread.created_utc
    images = (_image(1, "F1"), _image(2), _image(1))
    stored = store.add_turn("TA", _turn(thread.id, images=images))
    assert stored.id is not None and stored.created_utc is not None
    assert stored.created_utc.tzinfo == UTC
    assert [i.sha256 for i in stored.images] == [images[0].sha256, images[1].sha256, images[0].sha256]
    assert stored.images[0].seed == 4_294_967_001  # beyond a 32-bit int
    [loaded] = store.turns("TA", thread.id)
    assert loaded == stored
    assert loaded.hits[0]["score"] == 0.83 and loaded.params["nested"] == {"a": [1, 2.5, None, True]}
    assert store.find_turn("TA", stored.id) == stored
    assert store.find_thread("TA", thread.id) == thread
    assert store.find_thread_by_ref(REF_A) == thread
    assert _count(sessions, Image) == 2


def test_turns_come_back_in_order_and_images_are_shared_per_team(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    store = SqlThreadStore(sessions)
    thread = store.open_thread(REF_A, "U1", "imagine", "idea")
    kinds = ["start", "refine", "use_hit", "reroll", "vary", "edit", "pick"]
    for n, kind in enumerate(kinds):
        store.add_turn("TA", _turn(thread.id, kind, images=(_image(n % 2),)))
    turns = store.turns("TA", thread.id)
    assert [t.kind for t in turns] == kinds
    assert [t.id for t in turns] == sorted(t.id for t in turns if t.id is not None)
    assert _count(sessions, Image) == 2
    store.set_slack_file_id("TA", _image(0).sha256, "F123")
    assert store.find_image("TA", _image(0).sha256) == _image(0, "F123")
    assert store.turns("TA", thread.id)[0].images[0].slack_file_id == "F123"


def test_image_turn_kinds_fit_and_posted_pictures_are_not_recent_images(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    store = SqlThreadStore(sessions)
    thread = store.open_thread(REF_A, "U1", "imagine", "idea")
    kinds = ["start", "picture", "sketch", "style", "describe", "upscale", "cutout", "icon"]
    for n, kind in enumerate(kinds):
        store.add_turn("TA", _turn(thread.id, kind, images=(_image(10 + n),)))
    assert [t.kind for t in store.turns("TA", thread.id)] == kinds  # every kind fits the column
    recent = store.recent_images("TA", "U1", limit=20)
    assert len(recent) == len(kinds) - 1 and _image(11).seed not in [image.seed for image in recent]


def test_team_b_cannot_see_or_add_to_team_a_thread(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    store = SqlThreadStore(sessions)
    thread = store.open_thread(REF_A, "U1", "imagine", "idea")
    turn = store.add_turn("TA", _turn(thread.id, images=(_image(1),)))
    assert store.find_thread("TB", thread.id) is None
    assert store.find_thread_by_ref(ThreadRef("TB", REF_A.channel_id, REF_A.thread_ts)) is None
    assert store.turns("TB", thread.id) == []
    assert turn.id is not None and store.find_turn("TB", turn.id) is None
    assert store.find_image("TB", _image(1).sha256) is None
    with pytest.raises(NotFoundError):
        store.add_turn("TB", _turn(thread.id))
    with pytest.raises(NotFoundError):
        store.set_slack_file_id("TB", _image(1).sha256, "F9")
    with pytest.raises(NotFoundError):
        SqlFeedbackStore(sessions).record_feedback("TB", turn.id, "U2", 1)
    assert len(store.turns("TA", thread.id)) == 1
    # The same Slack coordinates in another team are another thread; the same image is stored per team.
    other = store.open_thread(ThreadRef("TB", REF_A.channel_id, REF_A.thread_ts), "U9", "imagine", "x")
    assert other.id != thread.id
    store.add_turn("TB", _turn(other.id, images=(_image(1),)))
    assert _count(sessions, Image) == 2


def test_the_schema_itself_rejects_cross_team_links(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    thread = SqlThreadStore(sessions).open_thread(REF_A, "U1", "imagine", "idea")
    with pytest.raises(IntegrityError), sessions.begin() as session:
        session.add(
            Turn(
                team_id="TB",
                thread_id=thread.id,
                kind="start",
                role="user",
                text="x",
                hits_json=[],
                params_json={},
            )
        )


def test_open_thread_is_idempotent_even_when_eight_threads_race(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    store = SqlThreadStore(sessions)
    first = store.open_thread(REF_A, "U1", "imagine", "idea")
    assert store.open_thread(REF_A, "U2", "avatar", "other idea") == first
    racing_ref = ThreadRef("TC", "C7", "1712345678.999999")
    results = _race(lambda: store.open_thread(racing_ref, "U1", "avatar", "race"))
    assert len({r.id for r in results}) == 1
    assert _count(sessions, Thread) == 2
    assert _count(sessions, Workspace) == 2


def test_turns_survive_an_engine_restart(db_url: str) -> None:  # noqa: F811
    first = create_db_engine(db_url)
    migrate(first)
    store = SqlThreadStore(session_factory(first))
    thread = store.open_thread(REF_A, "U1", "imagine", "idea")
    written = [
        store.add_turn("TA", _turn(thread.id, kind, (_image(n),))) for n, kind in enumerate(["start", "vary"])
    ]
    first.dispose()
    second = create_db_engine(db_url)
    try:
        reopened = SqlThreadStore(session_factory(second))
        assert reopened.find_thread_by_ref(REF_A) == thread
        assert reopened.turns("TA", thread.id) == written
    finally:
        second.dispose()


def test_event_claim_succeeds_exactly_once_under_eight_racing_threads(
    sessions: sessionmaker[Session],  # noqa: F811
) -> None:
    ledger = SqlEventLedger(sessions)
    results = _race(lambda: ledger.claim("TA", "Ev001", "app_mention"))
    assert sorted(results) == [False] * (WORKERS - 1) + [True]
    assert ledger.claim("TA", "Ev001", "app_mention") is False
    assert ledger.claim("TB", "Ev001", "app_mention") is True  # scoped by team
    assert ledger.is_claimed("TA", "Ev001") and not ledger.is_claimed("TA", "Ev002")
    assert ledger.forget_before("TA", datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert ledger.is_claimed("TB", "Ev001") and not ledger.is_claimed("TA", "Ev001")


def test_usage_counters_increment_atomically(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    usage = SqlUsageCounters(sessions)
    today, tomorrow = date(2026, 11, 25), date(2026, 11, 26)
    assert usage.get("TA", "U1", today) == 0
    assert [usage.increment("TA", "U1", today) for _ in range(3)] == [1, 2, 3]
    assert usage.increment("TA", "U1", today, by=4) == 7
    assert usage.increment("TA", "U1", tomorrow) == 1
    assert usage.get("TB", "U1", today) == 0
    _race(lambda: [usage.increment("TA", "U2", today) for _ in range(5)])
    assert usage.get("TA", "U2", today) == WORKERS * 5
    with pytest.raises(ValueError):
        usage.increment("TA", "U1", today, by=-1)


def test_settings_round_trip_and_merge(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    settings = SqlDefaultsStore(sessions)
    assert settings.user_defaults("TA", "U1") == UserDefaults()
    mine = UserDefaults(aspect_ratio="16:9", style=None, negative_prompt="text, watermark")
    channel = UserDefaults(
        aspect_ratio="1:1", style="anime", image_model="bedrock:stability.sd3-5-large-v1:0"
    )
    settings.set_user_defaults("TA", "U1", mine)
    settings.set_channel_defaults("TA", "C1", channel)
    assert settings.user_defaults("TA", "U1") == mine
    assert settings.channel_defaults("TA", "C1") == channel
    assert settings.effective_defaults("TA", "C1", "U1") == UserDefaults(
        "16:9", "anime", "text, watermark", "bedrock:stability.sd3-5-large-v1:0"
    )
    assert settings.user_defaults("TB", "U1") == UserDefaults()
    settings.set_user_defaults("TA", "U1", UserDefaults(style="photo"))
    assert settings.user_defaults("TA", "U1") == UserDefaults(style="photo")
    _race(lambda: settings.set_user_defaults("TA", "U5", mine))
    assert settings.user_defaults("TA", "U5") == mine


def test_saved_prompts_are_per_user_and_team(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    settings = SqlDefaultsStore(sessions)
    first = settings.save_prompt("TA", "U1", "a dog", "blurry", {"aspect_ratio": "2:3"})
    second = settings.save_prompt("TA", "U1", "a cat")
    settings.save_prompt("TB", "U1", "team b's prompt")
    listed = settings.saved_prompts("TA", "U1")
    assert [p.prompt for p in listed] == ["a cat", "a dog"]
    assert listed[1] == first and first.params == {"aspect_ratio": "2:3"}
    assert first.created_utc is not None and first.created_utc.tzinfo == UTC
    assert settings.delete_saved_prompt("TB", "U1", second.id) is False
    assert settings.delete_saved_prompt("TA", "U1", second.id) is True
    assert [p.id for p in settings.saved_prompts("TA", "U1")] == [first.id]


def test_feedback_and_votes(sessions: sessionmaker[Session]) -> None:  # noqa: F811
    store, feedback = SqlThreadStore(sessions), SqlFeedbackStore(sessions)
    thread = store.open_thread(REF_A, "U1", "avatar", "theme")
    turn = store.add_turn("TA", _turn(thread.id, "brainstorm", (_image(1), _image(2))))
    assert turn.id is not None
    feedback.record_feedback("TA", turn.id, "U1", 1)
    feedback.record_feedback("TA", turn.id, "U2", 1)
    feedback.record_feedback("TA", turn.id, "U2", -1)  # changes U2's mind, no second row
    feedback.record_feedback("TA", turn.id, "U1", -1, image_sha256=_image(2).sha256)
    assert feedback.feedback_tally("TA", turn.id) == FeedbackTally(up=1, down=1)
    assert feedback.feedback_tally("TA", turn.id, _image(2).sha256) == FeedbackTally(up=0, down=1)
    assert feedback.feedback_tally("TB", turn.id) == FeedbackTally()
    with pytest.raises(ValueError):
        feedback.record_feedback("TA", turn.id, "U1", 0)
    with pytest.raises(NotFoundError):
        feedback.record_feedback("TA", turn.id, "U1", 1, image_sha256=_image(9).sha256)
    assert feedback.vote("TA", thread.id, "U1", 2) is True
    assert feedback.vote("TA", thread.id, "U1", 2) is False
    assert feedback.vote("TA", thread.id, "U2", 2) and feedback.vote("TA", thread.id, "U2", 3)
    assert feedback.tally("TA", thread.id) == {2: 2, 3: 1}
    assert feedback.unvote("TA", thread.id, "U2", 3) and not feedback.unvote("TA", thread.id, "U2", 3)
    assert feedback.tally("TB", thread.id) == {}
    with pytest.raises(NotFoundError):
        feedback.vote("TB", thread.id, "U1", 1)
