"""GET /healthz on the real served app: 200 when the database and index answer, 503 naming what failed."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.slack.intake.health import HealthReport, HealthRoute, Readiness, run_checks
from bot.slack.services import Services
from bot.wiring import build_health
from retrieval.adapters.bm25 import Bm25SparseEncoder
from retrieval.adapters.edge_index import EdgePromptIndex
from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
from retrieval.search import Retriever
from sandbox.slack_api import FakeSlackApi
from storage.db import create_db_engine, session_factory
from storage.thread_store import SqlThreadStore
from tests.slack.slack_rig import Rig, serve


def _get(rig: Rig, path: str = "/healthz", method: str = "GET") -> tuple[int, dict[str, Any], str]:
    url = rig.driver.events_url.removesuffix("/slack/events") + path
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            return response.status, json.loads(body) if body else {}, response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        return exc.code, json.loads(body) if body else {}, exc.headers["Content-Type"]


def test_healthz_is_ok_when_database_and_index_answer(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path, health=build_health) as rig:
        status, body, content_type = _get(rig)
        assert status == 200 and content_type == "application/json"
        assert body["ok"] is True and body["database"] == "ok" and body["index"] == "ok"
        assert isinstance(body["elapsed_ms"], int)
        head_status, head_body, _ = _get(rig, method="HEAD")
        assert head_status == 200 and head_body == {}
        assert rig.driver.url_verification().status == 200  # Slack routing is untouched


def test_healthz_says_warming_until_the_warm_start_is_done(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    readiness = Readiness()
    with serve(fake, retriever, tmp_path, health=lambda services: build_health(services, readiness)) as rig:
        status, body, _ = _get(rig)
        assert status == 503 and body["ready"] == "warming" and body["index"] == "ok"
        assert rig.driver.url_verification().status == 200  # Slack's requests are answered meanwhile
        readiness.mark_ready()
        status, body, _ = _get(rig)
        assert status == 200 and body["ready"] == "ok"


def test_healthz_is_absent_without_a_health_function(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path) as rig:
        url = rig.driver.events_url.removesuffix("/slack/events") + "/healthz"
        try:
            urllib.request.urlopen(url, timeout=10)
            status = 200
        except urllib.error.HTTPError as exc:
            status = exc.code
        assert status == 404  # Bolt's answer: no route


def _broken_database(tmp_path: Path) -> Callable[[Services], Callable[[], HealthReport]]:
    """build_health over services whose thread store points at a database that cannot be opened."""
    (tmp_path / "a-directory").mkdir()
    engine = create_db_engine(f"sqlite:///{tmp_path / 'a-directory'}")  # not a database file
    broken = SqlThreadStore(session_factory(engine))

    def factory(services: Services) -> Callable[[], HealthReport]:
        return build_health(Services(**{**services.__dict__, "threads": broken}))

    return factory


def test_healthz_is_503_naming_a_broken_database(
    fake: FakeSlackApi, retriever: Retriever, tmp_path: Path
) -> None:
    with serve(fake, retriever, tmp_path, health=_broken_database(tmp_path)) as rig:
        status, body, _ = _get(rig)
    assert status == 503
    assert body["ok"] is False and body["index"] == "ok" and body["database"] != "ok"
    assert "Traceback" not in json.dumps(body) and str(tmp_path) not in json.dumps(body)


def test_healthz_is_503_naming_a_missing_index(fake: FakeSlackApi, tmp_path: Path) -> None:
    empty = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(tmp_path / "no-index"))
    try:
        with serve(fake, empty, tmp_path, health=build_health) as rig:
            status, body, _ = _get(rig)
    finally:
        empty.close()
    assert status == 503
    assert body == {"ok": False, "database": "ok", "index": "missing", "elapsed_ms": body["elapsed_ms"]}


def test_a_raising_health_function_is_a_503_without_details() -> None:
    def explode() -> HealthReport:
        raise RuntimeError("postgres://user:secret@db/imagine")

    answers: list[str] = []
    route = HealthRoute(lambda environ, start: [b"inner"], explode)
    body = b"".join(route({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, lambda s, h: answers.append(s)))
    assert answers == ["503 Service Unavailable"] and b"secret" not in body
    assert json.loads(body) == {"ok": False, "health": "error (RuntimeError)", "elapsed_ms": 0}
    assert list(route({"PATH_INFO": "/slack/events"}, lambda s, h: None)) == [b"inner"]


def test_run_checks_reports_every_check() -> None:
    def fails() -> None:
        raise TimeoutError("slow")

    report = run_checks({"database": lambda: None, "index": fails})
    assert not report.ok and report.checks == {"database": "ok", "index": "timeout"}
