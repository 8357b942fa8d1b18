"""`imagine-bot eval prompts` and `imagine-bot eval images`: does retrieval make the prompts better?"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from bot.config import Config
from bot.engine.turn_errors import BotError
from bot.entry.cli.eval_prompts import (
    IDEAS_PATH,
    PARTI_PATH,
    PARTI_SAMPLE,
    SPLITS,
    EvalIdea,
    examples,
    library_search,
    load_ideas,
    load_parti,
    markdown_table,
    measure,
    summarize,
)
from bot.entry.cli.main import _positive
from bot.writing.dialect import Dialect

PROMPTS_HELP = """\
For each idea: the five closest library prompts, a first prompt written by the configured chat model
(IMAGINE_CHAT_MODEL: the offline composer, or Claude on Bedrock) for each dialect's image model (tags:
SDXL; prose: SD3.5 / Stable Image; nova: Nova Canvas), and its scores: subject kept, phrases added and how
many a hit holds (grounded), ideas with 3+ grounded phrases and the subject kept, conflicts with the idea,
with each other and with a --no (every second idea is written again with a --no of the phrase its hits
share most), within the model's prompt limit, Nova negations, incantations, latency and tokens. Prints a
markdown report (or JSON).
"""


def add_eval_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `eval prompts` and `eval images`."""
    evaluate = commands.add_parser(
        "eval",
        help="measure what the library adds: composed prompts (offline or Claude) and drawn images",
        description="Evaluate the prompt writer on an idea set: `eval prompts` scores the prompts, "
        "`eval images --live` draws and judges them on Bedrock.",
        epilog=epilog,
    )
    which = evaluate.add_subparsers(dest="eval_command", required=True, metavar="WHAT")
    prompts = which.add_parser(
        "prompts",
        help="score the configured chat model's prompts over the idea set and PartiPrompts",
        description=PROMPTS_HELP,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prompts.add_argument("--ideas", type=Path, default=IDEAS_PATH, help="idea set JSON (default: the repo's)")
    prompts.add_argument("--split", choices=SPLITS, default="all", help="which half of the set (default all)")
    prompts.add_argument("--limit", type=_positive, help="at most N ideas of each set")
    prompts.add_argument(
        "--dialect", choices=[*(d.value for d in Dialect), "all"], default="all", help="default all"
    )
    prompts.add_argument("--parti", type=Path, help=f"PartiPrompts parquet (default {PARTI_PATH} if present)")
    prompts.add_argument("--no-parti", action="store_true", help="leave PartiPrompts out")
    prompts.add_argument("--parti-n", type=_positive, default=PARTI_SAMPLE, help="PartiPrompts sample size")
    prompts.add_argument("--examples", type=int, default=3, metavar="N", help="example prompts per set")
    prompts.add_argument("--json", action="store_true", help="print JSON (summary and every prompt)")

    from bot.entry.cli.eval_images import add_images_arguments

    add_images_arguments(which, epilog)


def run_eval(args: argparse.Namespace, config: Config) -> int:
    """Dispatch `eval prompts` / `eval images`."""
    if args.eval_command == "images":
        from bot.entry.cli.eval_images import run_images

        return run_images(args, config)
    return run_prompts(args, config)


def idea_sets(args: argparse.Namespace) -> list[EvalIdea]:
    """The ideas the options name: the set's split, then the PartiPrompts sample (each cut to --limit)."""
    ideas = load_ideas(args.ideas, args.split)
    groups = ["tuning", "heldout"] if args.split == "all" else [args.split]
    chosen = [i for g in groups for i in [x for x in ideas if x.group == g][: args.limit or None]]
    parti = args.parti or (PARTI_PATH if PARTI_PATH.exists() else None)
    if args.parti is not None and not args.parti.exists():
        raise BotError(f"no PartiPrompts file at {args.parti}")
    if parti is not None and not args.no_parti:
        chosen += load_parti(parti, args.parti_n)[: args.limit or None]
    if not chosen:
        raise BotError(f"no ideas to evaluate in {args.ideas} (split {args.split})")
    return chosen


def run_prompts(args: argparse.Namespace, config: Config) -> int:
    """Measure the configured chat model and print the report."""
    from bot.wiring import build_chat_model, build_retriever

    ideas = idea_sets(args)
    dialects = list(Dialect) if args.dialect == "all" else [Dialect(args.dialect)]
    chat = build_chat_model(config)
    retriever = build_retriever(config)
    err = Console(stderr=True)

    search = library_search(retriever)

    def progress(done: int, total: int) -> None:
        if done == total or done % 20 == 0:
            err.print(f"[dim]eval prompts: {done} of {total} ideas[/dim]", highlight=False)

    try:
        err.print(
            f"[dim]eval prompts: {len(ideas)} ideas × {len(dialects)} dialect(s) with {chat.model_id}[/dim]",
            highlight=False,
        )
        outcomes = measure(ideas, search, chat, dialects, progress)
    finally:
        retriever.close()
    rows = summarize(outcomes)
    if args.json:
        payload = {
            "chat_model": chat.model_id,
            "summary": [r.as_dict() for r in rows],
            "prompts": [o.as_dict() for o in outcomes],
        }
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return 0
    lines = [
        f"# Prompt evaluation: {chat.model_id}",
        "",
        f"Ideas: {args.ideas} (split {args.split})"
        + (" and PartiPrompts" if any(i.group == "parti" for i in ideas) else "")
        + "; dialects: "
        + ", ".join(d.label for d in dialects),
        "",
        markdown_table(rows),
    ]
    shown = examples(outcomes, args.examples)
    if shown:
        lines += ["", "Examples:", "", shown]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
