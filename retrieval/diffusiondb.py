"""Download DiffusionDB's prompt metadata from Hugging Face (real users; offline it fails fast)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

from retrieval.errors import IngestError

logger = logging.getLogger(__name__)
REPO_ID = "poloclub/diffusiondb"
FILES = {"2m": "metadata.parquet", "large": "metadata-large.parquet"}


def download_metadata(variant: str, cache_dir: Path, *, timeout_s: float = 10.0) -> Path:
    """Fetch (or reuse from cache) DiffusionDB's metadata parquet and return its local path."""
    filename = FILES.get(variant)
    if filename is None:
        raise IngestError(f"unknown DiffusionDB variant {variant!r}: use one of {', '.join(FILES)}")
    from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache

    cache_dir.mkdir(parents=True, exist_ok=True)
    cached = try_to_load_from_cache(REPO_ID, filename, cache_dir=str(cache_dir), repo_type="dataset")
    if isinstance(cached, str):
        return Path(cached)
    if constants.HF_HUB_OFFLINE:
        raise IngestError(_unreachable(filename, "HF_HUB_OFFLINE is set and the file is not in the cache"))
    reason = _probe(constants.ENDPOINT, timeout_s)
    if reason:
        raise IngestError(_unreachable(filename, f"{constants.ENDPOINT} is unreachable: {reason}"))
    logger.info("downloading %s/%s into %s", REPO_ID, filename, cache_dir)
    try:
        path = hf_hub_download(
            repo_id=REPO_ID,
            filename=filename,
            repo_type="dataset",
            cache_dir=str(cache_dir),
            etag_timeout=timeout_s,
        )
    except Exception as exc:  # huggingface-hub raises many types (offline, DNS, HTTP): all mean "not here"
        detail = str(exc).splitlines()[0] if str(exc) else ""
        raise IngestError(_unreachable(filename, f"{type(exc).__name__}: {detail[:160]}")) from None
    return Path(path)


def _unreachable(filename: str, reason: str) -> str:
    """The one-line error for a download that cannot happen, naming the offline alternative."""
    return (
        f"cannot download DiffusionDB {filename} from Hugging Face ({reason}); "
        f"download it elsewhere and run `imagine-bot ingest /path/to/{filename}`"
    )


def _probe(endpoint: str, timeout_s: float) -> str | None:
    """Why the hub's host cannot be reached with one TCP connect, or None when it can."""
    parsed = urlparse(endpoint)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
