"""`imagine-bot ingest --diffusiondb`: the real huggingface-hub download against a loopback hub."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tests.entry.test_cli import run_cli
from tests.fakes.huggingface import FakeHuggingFaceHub


def diffusiondb_metadata() -> bytes:
    """A small parquet file with DiffusionDB's metadata columns and names."""
    prompts = [
        "a lighthouse on a cliff during a storm, oil painting by ivan aivazovsky",
        "portrait of an old fisherman, dramatic lighting, 85mm photo",
        "a cozy cabin in a snowy forest at night, warm light, digital art",
        "a cozy cabin in a snowy forest at night, warm light, digital art",
        "a scene the classifier at DiffusionDB scored as nsfw, beach photo",
    ]
    table = pa.table(
        {
            "image_name": [f"{i}.png" for i in range(5)],
            "prompt": prompts,
            "part_id": [1] * 5,
            "seed": [1, 2, 3, 4, 5],
            "step": [50] * 5,
            "cfg": [7.0] * 5,
            "sampler": [8] * 5,
            "width": [512] * 5,
            "height": [768] * 5,
            "user_name": ["abc"] * 5,
            "timestamp": [datetime(2022, 8, 20, tzinfo=UTC)] * 5,
            "image_nsfw": [0.1, 0.2, 0.1, 0.1, 0.95],
            "prompt_nsfw": [0.0, 0.1, 0.0, 0.0, 0.2],
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def test_downloads_and_ingests_diffusiondb_metadata(tmp_path: Path) -> None:
    with FakeHuggingFaceHub("poloclub/diffusiondb", {"metadata.parquet": diffusiondb_metadata()}) as hub:
        env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url}
        result = run_cli("ingest", "--diffusiondb", "2m", data_dir=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    assert ("GET", "/datasets/poloclub/diffusiondb/resolve/main/metadata.parquet") in hub.requests
    assert re.search(r"read\W+5\b", result.stdout) and re.search(r"kept\W+3\b", result.stdout)
    assert re.search(r"nsfw score\W+1\b", result.stdout) and re.search(r"duplicate\W+1\b", result.stdout)
    assert (tmp_path / "downloads").is_dir()
    found = run_cli("search", "lighthouse in a storm", "--json", "-k", "1", data_dir=tmp_path)
    assert '"steps": 50' in found.stdout and '"height": 768' in found.stdout


def test_a_cached_download_is_reused_offline(tmp_path: Path) -> None:
    with FakeHuggingFaceHub("poloclub/diffusiondb", {"metadata.parquet": diffusiondb_metadata()}) as hub:
        first = run_cli(
            "ingest", "--diffusiondb", "2m", data_dir=tmp_path, HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url
        )
    assert first.returncode == 0, first.stderr
    again = run_cli("ingest", "--diffusiondb", "2m", data_dir=tmp_path)  # HF_HUB_OFFLINE=1, hub gone
    assert again.returncode == 0, again.stderr
    assert re.search(r"already in the index\W+3\b", again.stdout)
