"""Two `imagine-bot serve` processes share one database: a delivery seen by both is handled once."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.engine.ports import ThreadRef
from bot.slack.ids import ACTION_REROLL
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_driver import SlackDriver
from sandbox.slack_models import ALICE, BOB, GENERAL
from storage.db import create_db_engine, session_factory
from storage.thread_store import SqlThreadStore
from tests.entry.test_serve import SECRET, _env, _results, _until, serving
from tests.reliability_record import ReliabilityRecord


def _replica_data(small_index: Path, folder: Path) -> Path:
    """A data dir with its own copy of the index (an embedded index has one opener per directory)."""
    (folder / "index").mkdir(parents=True)
    shutil.copytree(small_index, folder / "index" / "prompts")
    return folder


def test_retries_and_double_clicks_across_two_replicas_make_one_turn_each(
    small_index: Path, tmp_path: Path, reliability: ReliabilityRecord
) -> None:
    database = f"sqlite:///{tmp_path / 'shared.db'}"
    with FakeSlackApi() as slack:
        env_a = _env(_replica_data(small_index, tmp_path / "a"), slack, IMAGINE_DATABASE_URL=database)
        env_b = _env(_replica_data(small_index, tmp_path / "b"), slack, IMAGINE_DATABASE_URL=database)
        with serving(env_a) as port_a, serving(env_b) as port_b:
            a = SlackDriver(f"http://127.0.0.1:{port_a}", SECRET, slack)
            b = SlackDriver(f"http://127.0.0.1:{port_b}", SECRET, slack)
            assert a.slash_command("/imagine", "a paper boat on a pond", ALICE, GENERAL).status == 200
            [root] = _until(lambda: slack.messages(GENERAL))
            root_ts = str(root["ts"])
            [first] = _until(lambda: _results(slack, root_ts))

            reply = slack.post_as_user(GENERAL, "make it a watercolor", BOB, root_ts)
            event = a.message_event(reply, GENERAL)
            deliveries = [(a, None), (b, 1), (a, 2), (b, 3)]  # Slack's retries land on either replica
            with ThreadPoolExecutor(max_workers=4) as pool:
                statuses = list(
                    pool.map(
                        lambda d: d[0].event(event, event_id="Ev0SHARED01", retry_num=d[1]).status, deliveries
                    )
                )
            assert statuses == [200] * 4
            _until(lambda: len(_results(slack, root_ts)) == 2)

            latest = _results(slack, root_ts)[-1]
            value = next(
                e["value"]
                for block in latest["blocks"]
                for e in block.get("elements") or []
                if e.get("action_id") == ACTION_REROLL
            )
            clicks = [a, b, a, b]  # a double (quadruple) click spread over both replicas
            with ThreadPoolExecutor(max_workers=4) as pool:
                answers = list(
                    pool.map(
                        lambda d: d.block_action(ACTION_REROLL, value, ALICE, GENERAL, latest["ts"]), clicks
                    )
                )
            assert [answer.status for answer in answers] == [200] * 4
            _until(lambda: len(_results(slack, root_ts)) == 3)
            a.user_posts(GENERAL, "now at night", ALICE, thread_ts=root_ts)  # later turns still work
            _until(lambda: len(_results(slack, root_ts)) == 4)
        engine = create_db_engine(database)
        store = SqlThreadStore(session_factory(engine))
        thread = store.find_thread_by_ref(ThreadRef("T0001", GENERAL, root_ts))
        assert thread is not None
        kinds = [turn.kind for turn in store.turns("T0001", thread.id)]
        engine.dispose()
        assert kinds == ["start", "refine", "reroll", "refine"]  # four deliveries, four clicks: one turn each
        assert len(slack.uploads()) == 4 and first["ts"] == _results(slack, root_ts)[0]["ts"]
        reliability("replicas.deliveries", len(deliveries))
        reliability("replicas.clicks", len(clicks))
        reliability("replicas.kinds", ", ".join(kinds))
