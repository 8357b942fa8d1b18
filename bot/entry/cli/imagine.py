"""`imagine-bot imagine` and `imagine-bot chat`: the conversation engine in a terminal."""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel

from bot.config import Config
from bot.engine.conversation import Conversation
from bot.engine.options import normalize_aspect_ratio
from bot.engine.ports import ThreadRef
from bot.engine.turn_errors import BotError
from bot.engine.turns import TurnOptions, TurnResult
from bot.entry.cli import output
from bot.wiring import build_conversation
from bot.writing.grounding import borrowed_line_of
from retrieval.craft import borrowable_line

LOCAL_TEAM = "local"
LOCAL_CHANNEL = "cli"
LOCAL_USER = "cli-user"
CHAT_HELP = (
    "Type a refinement (e.g. 'make it watercolor', 'no text', 'more like #2', 'wider'), or a command: "
    "/reroll  /vary  /use N  /edit PROMPT  /history  /help  /quit"
)


def _aspect_arg(value: str) -> str:
    """argparse type for --ar."""
    try:
        return normalize_aspect_ratio(value)
    except BotError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_engine_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `imagine` and `chat` on the CLI's subparsers."""
    imagine = commands.add_parser(
        "imagine",
        help="one turn: library hits, a composed prompt and its image(s)",
        description="Retrieve close library prompts, compose an optimized prompt and generate the image.",
        epilog=epilog,
    )
    imagine.add_argument("idea", help="the idea, e.g. 'a cartoon of a little dog'")
    imagine.add_argument("--ar", type=_aspect_arg, help="aspect ratio W:H, e.g. 3:2")
    imagine.add_argument("--seed", type=int, help="seed (0-4294967294)")
    imagine.add_argument("--no", action="append", default=[], metavar="WORDS", help="things to keep out")
    imagine.add_argument("--style", help="a style, e.g. anime, watercolor, photographic")
    imagine.add_argument("--n", type=int, default=1, choices=range(1, 5), metavar="1-4", help="images (1-4)")
    imagine.add_argument("--avatar", action="store_true", help="brainstorm avatar candidates instead")
    imagine.add_argument("--out", type=Path, help="also copy the image(s) into this folder")
    imagine.add_argument("--json", action="store_true", help="print the turn as JSON")

    chat = commands.add_parser(
        "chat",
        help="an interactive thread: refine across turns, resume later with --thread",
        description="An interactive terminal thread stored like a Slack thread. " + CHAT_HELP,
        epilog=epilog,
    )
    chat.add_argument("idea", nargs="?", help="start a new thread with this idea")
    chat.add_argument("--thread", type=int, help="resume a stored thread by its id")


def run_imagine(args: argparse.Namespace, config: Config) -> int:
    """Run one turn and print hits, prompt and image paths."""
    options = TurnOptions(
        aspect_ratio=args.ar,
        seed=args.seed,
        negative=tuple(part.strip() for value in args.no for part in value.split(",") if part.strip()),
        style=args.style,
        count=args.n,
    )
    conversation, close = build_conversation(config)
    try:
        ref = ThreadRef(LOCAL_TEAM, LOCAL_CHANNEL, f"{time.time():.6f}")
        if args.avatar:
            result = conversation.brainstorm(ref, LOCAL_USER, args.idea)
        else:
            result = conversation.start(ref, LOCAL_USER, args.idea, options)
    finally:
        close()
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for image in result.images:
            shutil.copy2(image.path, args.out / image.path.name)
    if args.json:
        output.print_json(turn_json(result))
    else:
        render_turn(output.console(), result)
    return 0


def turn_json(result: TurnResult) -> dict[str, object]:
    """A JSON view of a turn."""
    return {
        "thread_id": result.thread.id,
        "kind": result.turn.kind,
        "hits": [{"number": h.number, "prompt": h.prompt, "source": h.source} for h in result.hits],
        "prompts": [
            {
                "prompt": d.prompt,
                "negative_prompt": d.negative_prompt,
                "aspect_ratio": d.aspect_ratio,
                "style": d.style,
            }
            for d in result.drafts
        ],
        "images": [
            {
                "path": str(i.path),
                "seed": i.record.seed,
                "model": i.record.model_id,
                "width": i.record.width,
                "height": i.record.height,
            }
            for i in result.images
        ],
        "used_hits": list(result.drafts[0].used_hits) if result.drafts else [],
        "borrowed": list(result.drafts[0].borrowed) if result.drafts else [],
        "contact_sheet": str(result.contact_sheet) if result.contact_sheet else None,
        "chat_model": result.turn.chat_model,
        "labels": list(result.labels),
        "elapsed_ms": result.elapsed_ms,
    }


def render_turn(console: Console, result: TurnResult) -> None:
    """Print a turn the way the Slack thread shows it."""
    if result.hits and result.turn.kind in ("start", "brainstorm"):
        console.print("[bold]Closest prompts from the library[/bold]")
        for hit in result.hits:
            console.print(f"  [bold]#{hit.number}[/bold] {escape(hit.prompt)}", highlight=False)
            phrases = borrowable_line(hit.prompt)
            if phrases:
                console.print(f"      [green]borrow:[/green] {escape(phrases)}", highlight=False)
    if result.new_hits:
        console.print("[bold]New references[/bold] (say 'more like #n' to borrow one's look)")
        for hit in result.new_hits:
            console.print(f"  [bold]#{hit.number}[/bold] {escape(hit.prompt)}", highlight=False)
    for number, draft in enumerate(result.drafts, start=1):
        title = f"Candidate {number}" if len(result.drafts) > 1 else "Prompt"
        body = escape(draft.prompt)
        if not console.is_terminal:  # a script reads whole lines: no box, no wrapping
            console.print(f"{title.lower()}: {body}", highlight=False)
            if draft.negative_prompt:
                console.print(f"negative: {escape(draft.negative_prompt)}", highlight=False)
            continue
        if draft.negative_prompt:
            body += f"\n[dim]negative:[/dim] {escape(draft.negative_prompt)}"
        console.print(Panel(body, title=title, title_align="left"), highlight=False)
    borrowed = borrowed_line_of(result)
    if borrowed:
        console.print(f"[cyan]{escape(borrowed)}[/cyan]", highlight=False)
    for image in result.images:
        record = image.record
        console.print(
            f"[green]image[/green] {image.path}  [dim]seed {record.seed} · {record.model_id} · "
            f"{record.width}×{record.height}[/dim]",
            highlight=False,
        )
    if result.contact_sheet:
        console.print(f"[green]contact sheet[/green] {result.contact_sheet}", highlight=False)
    for label in result.labels:
        console.print(f"[yellow]note:[/yellow] {label}")
    console.print(f"[dim]thread {result.thread.id} · {result.elapsed_ms} ms[/dim]")


def run_chat(args: argparse.Namespace, config: Config) -> int:
    """An interactive thread on the terminal."""
    console = output.console()
    conversation, close = build_conversation(config)
    try:
        thread_id = args.thread
        if thread_id is not None:
            thread, turns = conversation.history(LOCAL_TEAM, thread_id)
            console.print(
                f"Resumed thread {thread.id}: [bold]{escape(thread.idea)}[/bold] ({len(turns)} turns)"
            )
        else:
            idea = args.idea or _ask(console, "Your idea")
            if idea is None:
                return 0
            ref = ThreadRef(LOCAL_TEAM, LOCAL_CHANNEL, f"{time.time():.6f}")
            result = conversation.start(ref, LOCAL_USER, idea)
            render_turn(console, result)
            thread_id = result.thread.id
        console.print(f"[dim]{CHAT_HELP}[/dim]")
        _loop(console, conversation, thread_id)
    finally:
        close()
    return 0


def _ask(console: Console, prompt: str) -> str | None:
    """One line from the user, or None at end of input."""
    try:
        line = console.input(f"[bold cyan]{prompt}>[/bold cyan] ")
    except EOFError:
        return None
    return line.strip()


def _loop(console: Console, conversation: Conversation, thread_id: int) -> None:
    """Read instructions until /quit or end of input."""
    while True:
        line = _ask(console, f"thread {thread_id}")
        if line is None or line in ("/quit", "/exit", "/q"):
            console.print(f"[dim]Bye. Resume with: imagine-bot chat --thread {thread_id}[/dim]")
            return
        if not line:
            continue
        try:
            result = _dispatch(console, conversation, thread_id, line)
        except BotError as error:
            console.print(f"[red]error:[/red] {escape(str(error))}")
            continue
        if result is not None:
            render_turn(console, result)


def _dispatch(console: Console, conversation: Conversation, thread_id: int, line: str) -> TurnResult | None:
    """Run one chat command or refinement."""
    command, _, rest = line.partition(" ")
    if command == "/help":
        console.print(CHAT_HELP)
        return None
    if command == "/history":
        _, turns = conversation.history(LOCAL_TEAM, thread_id)
        for turn in turns:
            console.print(
                f"[bold]{turn.kind}[/bold] {escape(turn.text)} → {escape(turn.prompt or '')}", highlight=False
            )
        return None
    if command == "/reroll":
        return conversation.reroll(LOCAL_TEAM, thread_id)
    if command == "/vary":
        return conversation.vary(LOCAL_TEAM, thread_id)
    if command == "/use":
        if not rest.strip().lstrip("#").isdigit():
            raise BotError("usage: /use N  (N is the number of a library prompt shown above)")
        return conversation.use_hit(LOCAL_TEAM, thread_id, int(rest.strip().lstrip("#")))
    if command == "/edit":
        return conversation.edit(LOCAL_TEAM, thread_id, rest)
    if command.startswith("/"):
        raise BotError(f"unknown command {command}: {CHAT_HELP}")
    return conversation.refine(LOCAL_TEAM, thread_id, line)
