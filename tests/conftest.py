"""Shared fixtures: paths to the shared data, isolated settings, small library slices."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings as hypothesis_settings

import tests.reliability_record
from tests.reliability_record import ReliabilityRecord, use

if TYPE_CHECKING:
    from retrieval.search import Retriever
    from sandbox.slack_api import FakeSlackApi
    from tests.slack.slack_rig import Rig

SHARED_DATA = Path(
    os.environ.get("IMAGINE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
LIBRARY = SHARED_DATA / "sd_prompts_real_users.parquet"
I2P = SHARED_DATA / "sd_prompts_i2p_inappropriate.parquet"

# CI (`.ci/run`) draws the same examples every run, so a red run is a regression, not a lucky draw;
# local runs keep exploring at random and print the blob that replays what they find.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "explore"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """--reliability-out FILE: where the scenarios' recorded figures go (bench/write_reliability.py)."""
    parser.addoption(
        "--reliability-out", default=None, help="write RELIABILITY.md's figures to this JSON file"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each test file's passed tests (RELIABILITY.md quotes how many cases a file runs)."""
    if report.when == "call" and report.passed:
        tests.reliability_record.session().count("passed." + report.nodeid.split("::", 1)[0])


@pytest.fixture(scope="session", autouse=True)
def reliability(request: pytest.FixtureRequest) -> Iterator[ReliabilityRecord]:
    """Record a figure for RELIABILITY.md: reliability("key", value) (or tests.reliability_record.figures)."""
    out = request.config.getoption("--reliability-out")
    record = ReliabilityRecord(Path(out) if out else None)
    use(record)
    yield record
    record.write()


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Keep every test away from the developer's env vars, ~/.local and any cloud credentials."""
    for name in list(os.environ):
        if name.startswith(("IMAGINE_", "AWS_", "SLACK_")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IMAGINE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    yield


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy static AWS credentials and no ~/.aws files, for botocore against the loopback stand-ins."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(scope="session")
def library_path() -> Path:
    """Path of the shared real-user prompt library (never copied into the repo)."""
    if not LIBRARY.exists():
        pytest.fail(f"shared prompt library not found at {LIBRARY}; set IMAGINE_SHARED_DATA")
    return LIBRARY


@pytest.fixture(scope="session")
def library_slice() -> list[str]:
    """The first 3,000 prompts of the shared library, as plain strings."""
    import pyarrow.parquet as pq

    table = pq.read_table(LIBRARY, columns=["prompt"])
    return [str(p) for p in table.column("prompt").to_pylist()[:3000]]


@pytest.fixture(scope="session")
def small_index(library_slice: list[str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Edge index of the first 1,500 library prompts, built once per test session."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.ingest import IngestOptions, Ingestor
    from retrieval.sources import RawPrompt

    path = tmp_path_factory.mktemp("small") / "index"
    index = EdgePromptIndex(path)
    rows = [RawPrompt(text, {"source": "test"}) for text in library_slice[:1500]]
    Ingestor(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), index).ingest_rows(rows, IngestOptions())
    index.close()
    return path


@pytest.fixture(scope="module")
def retriever(small_index: Path) -> Iterator[Retriever]:
    """One retriever over the session's small index per module (Edge allows one opener at a time)."""
    from retrieval.adapters.bm25 import Bm25SparseEncoder
    from retrieval.adapters.edge_index import EdgePromptIndex
    from retrieval.adapters.onnx_embedder import OnnxMiniLMEmbedder
    from retrieval.search import Retriever

    found = Retriever(OnnxMiniLMEmbedder(), Bm25SparseEncoder(), EdgePromptIndex(small_index))
    yield found
    found.close()


@pytest.fixture
def fake() -> Iterator[FakeSlackApi]:
    """A started sandbox Slack workspace."""
    from sandbox.slack_api import FakeSlackApi

    with FakeSlackApi() as api:
        yield api


@pytest.fixture
def rig(fake: FakeSlackApi, retriever: Retriever, tmp_path: Path) -> Iterator[Rig]:
    """The Slack app served over a fresh database, with its driver and services."""
    from tests.slack.slack_rig import serve

    with serve(fake, retriever, tmp_path) as served:
        yield served
