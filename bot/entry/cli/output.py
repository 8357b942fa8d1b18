"""What the CLI prints: rich on a terminal, and whole lines (never wrapped or cut) or JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

SCRIPT_WIDTH = 10_000  # wide enough that no path, id or prompt is ever folded or cut when piped


def is_terminal(stderr: bool = False) -> bool:
    """Whether the stream is an interactive terminal."""
    stream = sys.stderr if stderr else sys.stdout
    return bool(getattr(stream, "isatty", lambda: False)())


def console(stderr: bool = False) -> Console:
    """A rich Console for stdout (or stderr): wrapped for a terminal; plain, unwrapped lines otherwise."""
    if is_terminal(stderr):
        return Console(stderr=stderr)
    return Console(stderr=stderr, width=SCRIPT_WIDTH, soft_wrap=True, no_color=True, highlight=False)


def print_json(value: Any) -> None:
    """One JSON document on stdout (UTF-8 kept, indented), for `--json`."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
