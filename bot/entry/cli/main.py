"""The `imagine-bot` command line: ingest a prompt library and search it."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.config import ConfigError, load_config
from bot.engine.turn_errors import BotError
from bot.engine.turn_log import TURN_LOGGER
from bot.log_redaction import install_log_redaction
from retrieval.errors import RetrievalError
from retrieval.index_ports import SearchMode

logger = logging.getLogger("imagine_bot")
EPILOG = "Config come from IMAGINE_* environment variables (or .env); see README.md."


def _positive(value: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="imagine-bot",
        description="Turn rough ideas into strong Stable Diffusion prompts by retrieval over real prompts.",
        epilog=EPILOG,
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ingest = commands.add_parser(
        "ingest",
        help="load prompt files (parquet, CSV, JSONL) or DiffusionDB into the prompt index",
        description="Clean, dedupe, safety-flag, embed and index prompts. Re-running is idempotent and "
        "resumes an interrupted run.",
        epilog=EPILOG,
    )
    ingest.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files with a `prompt` column")
    ingest.add_argument("--diffusiondb", choices=["2m", "large"], help="download DiffusionDB's metadata")
    ingest.add_argument("--limit", type=_positive, help="read at most N rows in all")
    ingest.add_argument("--source", help="record this source name on every prompt")
    ingest.add_argument("--drop-unsafe", action="store_true", help="drop unsafe prompts instead of flagging")
    ingest.add_argument("--keep-near-duplicates", action="store_true", help="skip near-duplicate collapse")
    ingest.add_argument("--no-build", action="store_true", help="skip the HNSW build (search stays exact)")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON (no progress bars)")

    search = commands.add_parser(
        "search",
        help="find the closest library prompts for an idea",
        description="Search the prompt library the way the bot does (dense + BM25, re-ranked by how much "
        "of the idea a prompt covers and how crafted it is); safe mode on by default. Each hit shows the "
        "phrases worth borrowing from it. While `serve` holds the embedded index, it runs the search.",
        epilog=EPILOG,
    )
    search.add_argument("query", help="the idea, e.g. 'a cartoon of a little dog'")
    search.add_argument("-k", type=_positive, default=5, help="how many prompts (default 5, max 50)")
    search.add_argument("--json", action="store_true", help="print a JSON list of hits")
    search.add_argument("--no-safe", action="store_true", help="include prompts flagged as unsafe")
    modes = [mode.value for mode in SearchMode]
    search.add_argument("--mode", choices=modes, help="candidate signals (default: the bot's)")
    search.add_argument("--mmr", action="store_true", help="re-order by MMR diversity (off by default)")
    search.add_argument(
        "--explain",
        action="store_true",
        help="show each hit's relevance, craft and coverage, and what moved it",
    )

    info = commands.add_parser("info", help="show the configured index and its size", epilog=EPILOG)
    info.add_argument("--json", action="store_true", help="print location, model and size as JSON")

    from bot.entry.cli.demo.run import add_demo_command
    from bot.entry.cli.evaluate import add_eval_commands
    from bot.entry.cli.imagine import add_engine_commands
    from bot.entry.cli.index import add_index_commands
    from bot.entry.cli.serve import add_serve_command

    add_engine_commands(commands, EPILOG)
    add_index_commands(commands, EPILOG)
    add_serve_command(commands, EPILOG)
    add_demo_command(commands, EPILOG)
    add_eval_commands(commands, EPILOG)
    return parser


def _configure_logging(verbosity: int, log_format: str = "text") -> None:
    """Log to stderr, quiet by default; IMAGINE_LOG_FORMAT=json writes one JSON object per record."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from bot.engine.turn_log import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    if log_format == "json":  # the per-turn records (bot.turns) are INFO: keep them at the default level
        logging.getLogger(TURN_LOGGER).setLevel(min(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    install_log_redaction()  # tokens and AWS keys never reach a log line, in any command
    try:
        from bot.entry.cli import evaluate, imagine, index, library, serve
        from bot.entry.cli.demo import run as demo

        handlers = {
            "ingest": library.run_ingest,
            "search": library.run_search,
            "info": library.run_info,
            "imagine": imagine.run_imagine,
            "chat": imagine.run_chat,
            "serve": serve.run_serve,
            "demo": demo.run_demo,
            "index": index.run_index,
            "eval": evaluate.run_eval,
        }
        config = load_config()
        if config.log_format != "text":
            _configure_logging(args.verbose, config.log_format)
        return handlers[args.command](args, config)
    except (RetrievalError, ConfigError, BotError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - the CLI's one-line error
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)  # noqa: T201
        return 130
    except Exception as exc:
        logger.debug("unexpected failure", exc_info=True)
        print(f"error: unexpected {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)  # noqa: T201
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
