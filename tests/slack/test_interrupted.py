"""A serve process killed mid-turn: after a restart the turn is reported as interrupted, with Retry;
a job a dead replica left waiting in the queue is reported the same way."""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import select, update

from bot.engine.ports import ThreadRef
from bot.slack.handlers.thread_start import retry_value
from bot.slack.ids import ACTION_RETRY
from bot.slack.recovery import report_interrupted
from retrieval.search import Retriever
from sandbox.bedrock_image_models import HeldImageCalls
from sandbox.bedrock_runtime import FakeBedrockRuntime
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, BOB, GENERAL
from storage.db import create_db_engine, session_factory
from storage.job_store import SqlJobJournal
from storage.models import Job, utcnow
from storage.thread_store import SqlThreadStore
from tests.entry.test_serve import SECRET, _env, _results, _until, bedrock_env, serving, serving_process
from tests.reliability_record import figures
from tests.slack.slack_rig import TEAM, button_value, results, serve, wait_for
from tests.storage.storage_fixtures import db_url, postgres_admin_url  # noqa: F401


def test_a_turn_cut_short_by_a_kill_is_reported_after_restart_and_retried(
    small_index: Path, tmp_path: Path
) -> None:
    check_a_kill_mid_turn_is_reported_and_retried(small_index, tmp_path)


def restarted_notices(slack: FakeSlackApi, root_ts: str) -> list[dict[str, Any]]:
    """The "I was restarted while working on this" notices in a #general thread."""
    return [m for m in slack.messages(GENERAL, root_ts) if "restarted" in json.dumps(m)]


def status_lines(thread: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The status lines ("Drawing…", "Queued") in a thread."""
    return [m for m in thread if "status" in [b.get("block_id") for b in m.get("blocks") or []]]


def check_a_kill_mid_turn_is_reported_and_retried(
    small_index: Path, tmp_path: Path, database: str | None = None
) -> None:
    """Kill `serve` while its image call hangs, restart, see the notice, press Retry (`database`: a URL)."""
    data_dir = tmp_path / "data"  # its own copy of the index: a module's retriever may hold the shared one
    shutil.copytree(small_index, data_dir / "index" / "prompts")
    image_calls = HeldImageCalls()  # the first process is killed while its image call is held

    with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock, image_calls:
        bedrock.register("invoke", "stability.sd3", image_calls)
        env = _env(
            data_dir,
            slack,
            **({"IMAGINE_DATABASE_URL": database} if database else {}),
            **bedrock_env(bedrock, tmp_path),
            IMAGINE_JOB_STALE_S="2",
        )
        with serving_process(env) as (port, process):
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            assert driver.slash_command("/imagine", "a lighthouse at dusk", ALICE, GENERAL).status == 200
            [root] = _until(lambda: slack.messages(GENERAL))
            root_ts = str(root["ts"])
            assert image_calls.held.wait(60), "the image call never started"
            os.kill(process.pid, signal.SIGKILL)  # no goodbye: the job stays 'running', its heartbeat stops
            process.wait(timeout=20)
        image_calls.release.set()
        thread = json.dumps(slack.messages(GENERAL, root_ts))
        assert "hit_1" in thread and not _results(slack, root_ts)
        before = len(status_lines(slack.messages(GENERAL, root_ts)))
        assert before == 1  # left behind by the killed process
        with serving(env) as port:
            notices = _until(lambda: restarted_notices(slack, root_ts), 30)
            assert len(notices) == 1
            after = len(status_lines(slack.messages(GENERAL, root_ts)))
            assert after == 0  # the dead turn's "Drawing…" is gone
            retry = button_value(notices[0], ACTION_RETRY)
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            driver.block_action(ACTION_RETRY, retry, ALICE, GENERAL, notices[0]["ts"])
            _until(lambda: _results(slack, root_ts), 60)
        engine = create_db_engine(database or env_database(data_dir))
        store = SqlThreadStore(session_factory(engine))
        record = store.find_thread_by_ref(ThreadRef("T0001", GENERAL, root_ts))
        assert record is not None and [t.kind for t in store.turns("T0001", record.id)] == ["start"]
        engine.dispose()
        assert restarted_notices(slack, root_ts) == []  # gone when Retry was pressed; no half-written turn
        where = "postgres" if database else "sqlite"
        figures(f"kill.{where}", notices=len(notices), status_before=before, status_after=after, turns=1)


def env_database(data_dir: Path) -> str:
    """The default SQLite database of a data dir."""
    return f"sqlite:///{data_dir / 'imagine.db'}"


def test_a_job_a_dead_replica_left_waiting_is_reported_and_retried(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    db_url: str,  # noqa: F811
) -> None:
    with serve(fake, retriever, tmp_path, db_url=db_url) as rig:
        client = WebClient(token=fake.bot_token(), base_url=fake.api_url)
        root_ts = str(client.chat_postMessage(channel=GENERAL, text="Alice imagined a kite")["ts"])
        engine = create_db_engine(db_url)
        sessions = session_factory(engine)
        retry = retry_value("start", text="a kite over the dunes --ar 3:2")
        dead = SqlJobJournal(sessions, "host:1:dead")  # killed while the job waited for a slot
        dead.enqueue(ThreadRef(TEAM, GENERAL, root_ts), ALICE, retry)
        with sessions.begin() as session:  # its heartbeat stopped an hour ago
            session.execute(update(Job).values(heartbeat_utc=utcnow() - timedelta(hours=1)))
        assert report_interrupted(rig.services, lambda _team: client) == 1
        assert report_interrupted(rig.services, lambda _team: client) == 0  # reported once
        with sessions() as session:
            assert list(session.scalars(select(Job.state))) == ["interrupted"]
        engine.dispose()
        [notice] = restarted_notices(fake, root_ts)
        retry_button = button_value(notice, ACTION_RETRY)
        rig.driver.block_action(ACTION_RETRY, retry_button, ALICE, GENERAL, notice["ts"])
        [result] = wait_for(lambda: results(fake, root_ts))  # the job never started; Retry draws it
        assert "3:2" in json.dumps(result["blocks"]) and fake.message(GENERAL, notice["ts"]) is None


def test_recovery_removes_only_the_dead_running_turns_status_line_and_asks_auth_test_once(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    db_url: str,  # noqa: F811
) -> None:
    with serve(fake, retriever, tmp_path, db_url=db_url) as rig:
        client = WebClient(token=fake.bot_token(), base_url=fake.api_url)
        root_ts = str(client.chat_postMessage(channel=GENERAL, text="Alice imagined a kite")["ts"])
        ref = ThreadRef(TEAM, GENERAL, root_ts)
        engine = create_db_engine(db_url)
        sessions = session_factory(engine)
        dead = SqlJobJournal(sessions, "host:1:dead")  # one turn drew, one reply waited behind it
        running = dead.enqueue(ref, ALICE, retry_value("start", text="a kite"))
        assert dead.start(running)
        dead.wait(ref, BOB, retry_value("refine", text="make it red"))
        status = {"type": "section", "block_id": "status", "text": {"type": "mrkdwn", "text": "Drawing…"}}
        for text in ("Drawing… (the dead turn)", "Drawing… (a live turn on another replica)"):
            client.chat_postMessage(channel=GENERAL, thread_ts=root_ts, text=text, blocks=[status])
        with sessions.begin() as session:  # the worker stopped beating an hour ago
            session.execute(update(Job).values(heartbeat_utc=utcnow() - timedelta(hours=1)))
        fake.clear_calls()
        assert report_interrupted(rig.services, lambda _team: client) == 2
        engine.dispose()
        left = [m["text"] for m in status_lines(fake.messages(GENERAL, root_ts))]
        assert left == ["Drawing… (a live turn on another replica)"]
        assert len(fake.calls_to("auth.test")) == 1
        assert len(restarted_notices(fake, root_ts)) == 2


def test_a_turn_waiting_behind_another_in_its_thread_is_reported_too_after_a_kill(
    small_index: Path,
    tmp_path: Path,
    db_url: str,  # noqa: F811
) -> None:
    check_a_kill_while_a_turn_waits_is_reported_and_retried(small_index, tmp_path, db_url)


def job_states(database: str) -> Counter[str]:
    """How many jobs are in each state."""
    engine = create_db_engine(database)
    try:
        with session_factory(engine)() as session:
            return Counter(session.scalars(select(Job.state)))
    finally:
        engine.dispose()


def retry_spec(notice: dict[str, Any]) -> dict[str, Any]:
    """The spec behind a notice's Retry button."""
    return dict(json.loads(button_value(notice, ACTION_RETRY)))


def check_a_kill_while_a_turn_waits_is_reported_and_retried(
    small_index: Path, tmp_path: Path, database: str
) -> None:
    """Kill `serve` while one turn draws and a reply waits behind it in the thread; both are reported."""
    data_dir = tmp_path / "data"
    shutil.copytree(small_index, data_dir / "index" / "prompts")
    image_calls = HeldImageCalls()  # the first process is killed while its image call is held

    with FakeSlackApi() as slack, FakeBedrockRuntime() as bedrock, image_calls:
        bedrock.register("invoke", "stability.sd3", image_calls)
        env = _env(
            data_dir,
            slack,
            IMAGINE_DATABASE_URL=database,
            **bedrock_env(bedrock, tmp_path),
            IMAGINE_JOB_STALE_S="2",
        )
        with serving_process(env) as (port, process):
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            assert driver.slash_command("/imagine", "a lighthouse at dusk", ALICE, GENERAL).status == 200
            [root] = _until(lambda: slack.messages(GENERAL))
            root_ts = str(root["ts"])
            assert image_calls.held.wait(60), "the image call never started"
            driver.user_posts(GENERAL, "add a full moon", ALICE, thread_ts=root_ts)  # waits its turn
            _until(lambda: job_states(database) == Counter(running=1, waiting=1))
            os.kill(process.pid, signal.SIGKILL)  # both rows stay open, their heartbeats stop
            process.wait(timeout=20)
        image_calls.release.set()
        assert not _results(slack, root_ts) and len(status_lines(slack.messages(GENERAL, root_ts))) == 1

        def notices() -> list[dict[str, Any]]:
            return restarted_notices(slack, root_ts)

        with serving(env) as port:
            first, second = _until(lambda: len(notices()) == 2 and notices(), 30)  # in arrival order
            assert retry_spec(first)["op"] == "start" and "lighthouse" in retry_spec(first)["text"]
            assert retry_spec(second) == {"op": "refine", "text": "add a full moon"}
            assert not status_lines(slack.messages(GENERAL, root_ts))  # the dead turn's "Drawing…" is gone
            assert job_states(database) == Counter(interrupted=2)
            driver = SlackDriver(f"http://127.0.0.1:{port}", SECRET, slack)
            for count, notice in enumerate((first, second), start=1):  # Retry each, in turn
                retry = button_value(notice, ACTION_RETRY)
                driver.block_action(ACTION_RETRY, retry, ALICE, GENERAL, notice["ts"])
                _until(lambda: len(_results(slack, root_ts)) == count, 60)  # noqa: B023
            assert notices() == []  # each notice went away when its Retry was pressed
        engine = create_db_engine(database)
        store = SqlThreadStore(session_factory(engine))
        record = store.find_thread_by_ref(ThreadRef("T0001", GENERAL, root_ts))
        assert record is not None
        turns = store.turns("T0001", record.id)
        engine.dispose()
        assert [t.kind for t in turns] == ["start", "refine"] and "moon" in (turns[1].prompt or "")
        assert job_states(database) == Counter(interrupted=2, done=2)
