"""Figures the reliability scenarios record for RELIABILITY.md (bench/write_reliability.py renders them).

A test calls `reliability("load.fifty.images", 31)` with what it sent and observed; with
`pytest --reliability-out FILE` the session writes every recorded figure to FILE as JSON, otherwise the
figures are dropped. The test still asserts what must hold; this only keeps the document's numbers
from being copied by hand.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any


class ReliabilityRecord:
    """Figures by key for one pytest session."""

    def __init__(self, out: Path | None) -> None:
        self._out = out
        self._figures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, value: Any) -> None:
        """Record one figure (a number, a short text or a list of them)."""
        with self._lock:
            self._figures[key] = value

    def count(self, key: str) -> None:
        """Add one to a counted figure."""
        with self._lock:
            self._figures[key] = int(self._figures.get(key, 0)) + 1

    def write(self) -> None:
        """Write the figures when an output file was asked for."""
        if self._out is not None:
            self._out.parent.mkdir(parents=True, exist_ok=True)
            self._out.write_text(json.dumps(self._figures, indent=2, sort_keys=True) + "\n", encoding="utf-8")


_SESSION = ReliabilityRecord(None)  # replaced by the session's record (tests/conftest.py)


def use(record: ReliabilityRecord) -> None:
    """Make `record` the session's record (called once by tests/conftest.py)."""
    global _SESSION
    _SESSION = record


def session() -> ReliabilityRecord:
    """The session's record."""
    return _SESSION


def figures(prefix: str, **counts: Any) -> None:
    """Record several figures under one prefix: figures("faults.slack_503", requests=11, retries=1)."""
    for key, value in counts.items():
        _SESSION(f"{prefix}.{key}", value)
