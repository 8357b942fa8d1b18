"""The Slack-level scenarios that lean on the database, run on Postgres (skipped without a server).

Set IMAGINE_TEST_POSTGRES_URL as tests/storage/storage_fixtures.py describes (CI's .ci/run does): each test
gets a scratch database. The same scenarios run on SQLite in test_slack_flows, test_interrupted and
test_slack_load.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import tests.slack.test_slack_flows as flows
from bot.engine.ports import ThreadRef
from bot.slack.ids import ACTION_REROLL
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from sandbox.slack_models import ALICE, BOB, GENERAL
from tests.reliability_record import ReliabilityRecord
from tests.slack.slack_rig import TEAM, Rig, button_value, imagine, results, serve, wait_for
from tests.slack.test_interrupted import check_a_kill_mid_turn_is_reported_and_retried
from tests.slack.test_slack_load import check_two_replicas_share_each_users_cap
from tests.storage.storage_fixtures import POSTGRES_ENV, _scratch_postgres, postgres_admin_url  # noqa: F401


@pytest.fixture
def postgres_url(postgres_admin_url: str | None) -> Iterator[str]:  # noqa: F811
    """A scratch Postgres database for one test, dropped afterwards."""
    if not postgres_admin_url:
        pytest.skip(f"Postgres not tested: set {POSTGRES_ENV} to a server URL to run this case")
    yield from _scratch_postgres(postgres_admin_url)


def kinds(rig: Rig, root_ts: str) -> list[str]:
    """The kinds of the turns stored for a #general thread."""
    record = rig.services.threads.find_thread_by_ref(ThreadRef(TEAM, GENERAL, root_ts))
    assert record is not None
    return [turn.kind for turn in rig.services.threads.turns(TEAM, record.id)]


def test_on_postgres_slack_retries_and_double_clicks_make_one_turn(
    fake: FakeSlackApi,
    retriever: Retriever,
    tmp_path: Path,
    postgres_url: str,
    reliability: ReliabilityRecord,
) -> None:
    with serve(fake, retriever, tmp_path, db_url=postgres_url) as rig:
        flows.test_slack_retries_and_double_clicks_make_one_turn(fake, rig, reliability)


def test_on_postgres_deliveries_and_clicks_spread_over_two_replicas_make_one_turn_each(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, postgres_url: str
) -> None:
    with (
        serve(fake, retriever, tmp_path / "a", db_url=postgres_url) as a,
        serve(fake, retriever, tmp_path / "b", db_url=postgres_url) as b,
    ):
        root_ts = imagine(fake, a, "a paper boat on a pond")
        event = a.driver.message_event(
            fake.post_as_user(GENERAL, "make it a watercolor", BOB, root_ts), GENERAL
        )
        deliveries = [(a, None), (b, 1), (a, 2), (b, 3)]  # Slack's retries land on either replica
        with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
            statuses = list(
                pool.map(
                    lambda d: d[0].driver.event(event, event_id="Ev0PGSHARED", retry_num=d[1]).status,
                    deliveries,
                )
            )
        assert statuses == [200] * len(deliveries)
        wait_for(lambda: len(results(fake, root_ts)) == 2)
        latest = results(fake, root_ts)[-1]
        value = button_value(latest, ACTION_REROLL)
        clicks = [a, b, a, b]  # a quadruple click spread over both replicas
        with ThreadPoolExecutor(max_workers=len(clicks)) as pool:
            answers = list(
                pool.map(
                    lambda r: r.driver.block_action(ACTION_REROLL, value, ALICE, GENERAL, latest["ts"]),
                    clicks,
                )
            )
        assert [answer.status for answer in answers] == [200] * len(clicks)
        wait_for(lambda: len(results(fake, root_ts)) == 3)
        b.driver.user_posts(GENERAL, "now at night", ALICE, thread_ts=root_ts)  # later turns still work
        wait_for(lambda: len(results(fake, root_ts)) == 4)
        assert kinds(a, root_ts) == ["start", "refine", "reroll", "refine"]
        assert len(fake.uploads()) == 4


def test_on_postgres_two_replicas_share_each_users_queue_cap(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path, postgres_url: str
) -> None:
    check_two_replicas_share_each_users_cap(fake, retriever, tmp_path, postgres_url)


def test_on_postgres_a_turn_cut_short_by_a_kill_is_reported_after_restart_and_retried(
    small_index: Path, tmp_path: Path, postgres_url: str
) -> None:
    check_a_kill_mid_turn_is_reported_and_retried(small_index, tmp_path, postgres_url)
