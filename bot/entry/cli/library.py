"""What the CLI subcommands do: wire adapters from config, run, and render results with rich."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from bot.config import Config
from bot.entry.cli import output
from bot.wiring import build_index, build_ingestor, build_retriever, mine_modifier_stats
from retrieval.craft import borrowable_line
from retrieval.errors import IngestError
from retrieval.index_ports import IndexSpec, PromptIndex, SearchMode

if TYPE_CHECKING:
    from retrieval.index_share import IndexShareClient
    from retrieval.ingest import IngestSummary
    from retrieval.search import PromptHit


class RateColumn(ProgressColumn):
    """Items per second of the current stage."""

    def render(self, task: Task) -> Text:
        """Render the task's speed."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class RichIngestProgress:
    """IngestProgress shown as one rich progress bar per stage, on stderr."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: Any = None

    def stage(self, description: str, total: int | None = None) -> None:
        """Finish the previous stage's bar and start a new one."""
        self.finish()
        self._task = self._progress.add_task(description, total=total)

    def finish(self) -> None:
        """Show the current stage as complete."""
        if self._task is not None:
            done = self._progress.tasks[-1].completed or 1
            self._progress.update(self._task, total=done, completed=done)

    def advance(self, count: int) -> None:
        """Advance the current bar."""
        if self._task is not None:
            self._progress.advance(self._task, count)


def _progress() -> Progress:
    """The columns of the ingest progress display."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=24),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=output.console(stderr=True),
    )


def _summary_table(summary: IngestSummary) -> Table:
    """A rich table of what the ingest did."""
    caption = None
    if summary.already_indexed:
        caption = (
            "Prompts already in the index keep their stored safety flags (not counted above); "
            "`imagine-bot index rescreen` re-applies today's screens to them."
        )
    table = Table(title="Ingest summary", show_header=False, caption=caption)
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("read", f"{summary.read:,}")
    table.add_row("kept", f"{summary.kept:,}")
    table.add_row("  newly embedded", f"{summary.embedded:,}")
    table.add_row("    of which flagged unsafe (hidden in safe search)", f"{summary.flagged_unsafe:,}")
    table.add_row("  already in the index", f"{summary.already_indexed:,}")
    for reason, count in summary.dropped.most_common():
        table.add_row(f"dropped: {reason.replace('_', ' ')}", f"{count:,}")
    rate = summary.embedded / summary.embed_seconds if summary.embed_seconds else 0.0
    timing = f"{summary.seconds:,.1f} (embedding {summary.embed_seconds:,.1f}, {rate:,.0f}/s)"
    table.add_row("seconds", timing)
    return table


def run_ingest(args: argparse.Namespace, config: Config) -> int:
    """`imagine-bot ingest`: load files or DiffusionDB into the configured index."""
    from retrieval.ingest import IngestOptions

    paths = list(args.paths)
    if args.diffusiondb:
        from retrieval.diffusiondb import download_metadata

        paths.append(download_metadata(args.diffusiondb, config.data_dir / "downloads"))
    if not paths:
        raise IngestError("nothing to ingest: give one or more PATHs or --diffusiondb 2m|large")
    options = IngestOptions(
        limit=args.limit,
        source=args.source,
        prompt_nsfw_max=config.prompt_nsfw_max,
        image_nsfw_max=config.image_nsfw_max,
        drop_unsafe=args.drop_unsafe,
        collapse_near_duplicates=not args.keep_near_duplicates,
        build_index=not args.no_build,
    )
    served = _served(config)
    if served is not None:
        with _progress() as progress:
            reporter = RichIngestProgress(progress)
            summary, modifiers = served.ingest(paths, options, reporter)
            reporter.finish()
    else:
        ingestor, index = build_ingestor(config)
        try:
            with _progress() as progress:
                reporter = RichIngestProgress(progress)
                summary = ingestor.ingest_files(paths, options, reporter)
                reporter.stage("Mining modifiers")
                modifiers = _mine_modifiers(index, config)
                reporter.finish()
        finally:
            index.close()
    if args.json:
        output.print_json({**summary.as_dict(), "modifiers": modifiers})
    else:
        output.console().print(_summary_table(summary))
        output.console(stderr=True).print(f"[dim]{modifiers} modifiers mined for the offline composer[/dim]")
    return 0


def _mine_modifiers(index: PromptIndex, config: Config) -> int:
    """Mine style-modifier statistics from the whole stored library for the offline composer."""
    return mine_modifier_stats(index, config)


def _served(config: Config) -> IndexShareClient | None:
    """The running `serve` that holds the embedded index, if one does (it answers for the index)."""
    from retrieval.index_share import IndexShareClient, is_served, socket_path

    path = socket_path(config.index_dir)
    if config.qdrant_url or not is_served(path):
        return None
    output.console(stderr=True).print(
        f"[dim]the index is held by a running `serve`: asking it ({path})[/dim]"
    )
    return IndexShareClient(path)


def run_search(args: argparse.Namespace, config: Config) -> int:
    """`imagine-bot search`: print the top k prompts as text or JSON."""
    started = time.perf_counter()
    options: dict[str, Any] = {"safe": not args.no_safe, "diversify": args.mmr, "explain": args.explain}
    if args.mode:
        options["mode"] = SearchMode(args.mode)
    served = _served(config)
    if served is not None:
        hits = served.search(args.query, args.k, **options)
    else:
        retriever = build_retriever(config)
        try:
            hits = retriever.search(args.query, k=args.k, **options)
        finally:
            retriever.close()
    if args.json:
        output.print_json([hit.as_dict() for hit in hits])
        return 0
    console = output.console()
    if not hits:
        console.print("No matching prompts.")
        return 0
    first = _explanation(hits[0])
    if first and first.get("plan"):
        console.print(f"[dim]concept plan: {escape(str(first['plan']))}[/dim]", highlight=False)
    for number, hit in enumerate(hits, start=1):
        details = [f"score {hit.score:.4f}", str(hit.payload.get("source") or "unknown source")]
        if hit.payload.get("near_duplicates"):
            details.append(f"+{hit.payload['near_duplicates']} near-duplicates")
        if not hit.payload.get("safe", True):
            details.append("[red]flagged unsafe[/red]")
        console.print(f"[bold]{number}.[/bold] {escape(hit.prompt)}", highlight=False)
        borrowable = borrowable_line(hit.prompt)
        if borrowable:
            console.print(f"   [green]borrow:[/green] {escape(borrowable)}", highlight=False)
        console.print(f"   [dim]{' · '.join(details)}[/dim]", highlight=False)
        why = explanation_of(hit)
        if why:
            console.print(f"   [dim]{escape(why)}[/dim]", highlight=False)
    elapsed = time.perf_counter() - started
    output.console(stderr=True).print(f"[dim]{len(hits)} prompts in {elapsed:.2f} s[/dim]")
    return 0


def _explanation(hit: PromptHit) -> dict[str, Any] | None:
    """A hit's explanation as a dict: its own, or the one a running `serve` sent in its payload."""
    why = hit.explanation.as_dict() if hit.explanation is not None else hit.payload.get("explanation")
    return why if isinstance(why, dict) else None


def explanation_of(hit: PromptHit) -> str:
    """`--explain`'s line for a hit: its scores and the lever that moved it ('' without an explanation)."""
    why = _explanation(hit)
    if why is None:
        return ""
    ranks = f"rank {why.get('rank_by_relevance')} by relevance → {why.get('rank')}"
    covered = ", ".join(why.get("covered") or []) or "none"
    craft = f"craft {why.get('craft')}"
    if not why.get("craft_boosted", True):
        craft += " (not counted: covers too little of the idea)"
    return (
        f"relevance {why.get('relevance')} · {craft} · coverage {why.get('coverage')} "
        f"(covers: {covered}) · {ranks}, moved by {why.get('moved_by')}"
    )


def run_info(args: argparse.Namespace, config: Config) -> int:
    """`imagine-bot info`: where the index is, what built it and how many prompts it holds."""
    location = config.qdrant_url or str(config.index_dir)
    found: dict[str, Any] = {"index": location, "collection": config.collection, "prompts": None}
    served = _served(config)
    spec: IndexSpec | None = None
    if served is not None:
        found |= served.info()
        spec = IndexSpec(str(found["embed_model"]), int(found["dimension"]))
    else:
        index = build_index(config)
        try:
            spec = index.spec()
            if spec is not None:
                index.open(spec, create=False)
                found |= {
                    "embed_model": spec.embed_model,
                    "dimension": spec.dimension,
                    "prompts": index.count(),
                }
        finally:
            index.close()
    if args.json:
        output.print_json(found)
        return 0
    console = output.console()
    console.print(f"index: {location} (collection {config.collection})")
    if spec is None:
        console.print("no index yet: run `imagine-bot ingest PATH`")
        return 0
    console.print(f"built with: {spec.embed_model} ({spec.dimension}-d)")
    console.print(f"prompts: {found['prompts']:,}")
    return 0
