"""`imagine-bot eval images --live`: the raw idea and the composed prompt drawn with one seed, judged blind.

For each idea (the held-out half of the idea set by default) the bot retrieves its hits, has the configured
chat model compose a prompt for the configured image model, and draws the raw idea and the composed prompt
with the same seed. A Claude vision model sees each pair twice, in both orders (which order goes first is
random, from --seed), and names the image that follows the idea better (adherence) and the better-looking
one (appeal). The composed prompt *wins* an idea when both verdicts prefer it, *loses* when both prefer the
raw idea, and splits otherwise; the win rate is wins / (wins + losses) with a 95 % Wilson interval. Each
idea gets a contact sheet (1 = raw idea, 2 = composed). It costs real money: the estimate is printed first
and the run needs --yes.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot.config import PROVIDERS_CHAT, PROVIDERS_IMAGE, Config, split_provider
from bot.engine.contact_sheet import contact_sheet
from bot.engine.ports import ChatModel, ComposeRequest, HitForPrompt, ImageModel, ImageRequest
from bot.engine.pricing import estimate_cost
from bot.engine.turn_errors import BotError
from bot.engine.turns import prompt_limit
from bot.entry.cli.eval_prompts import IDEAS_PATH, EvalIdea, Search, library_search, load_ideas
from bot.writing.vision_judge import Judgement

JUDGE_SIZE = 512  # the judge sees each image at most this big (about 350 input tokens an image)
COMPOSE_TOKENS = (1500, 250)  # estimated input / output tokens of one compose call
JUDGE_TOKENS = (1000, 80)  # of one judge call with two images
Z95 = 1.959964
NEEDS_BEDROCK = (
    "eval images needs a Bedrock image and chat model: set IMAGINE_CHAT_MODEL=bedrock:<claude id> and "
    "IMAGINE_IMAGE_MODEL=bedrock:<image model id> (the offline composer and preview cannot be judged)"
)
IMAGES_HELP = """\
For each idea: the configured chat model composes a prompt from the library hits; the configured image
model draws the raw idea and the composed prompt with the same seed; a Claude vision model judges each pair
blind, twice (both orders, shuffled), for prompt adherence and appeal. Reports the composed prompt's win
rate with a 95% Wilson interval, a contact sheet per idea and the cost. It calls Bedrock and costs money:
without --yes it prints the estimated cost and exits with status 2.
"""


class PairJudge(Protocol):
    """Says which of two images shows an idea better (bot.writing.vision_judge satisfies this)."""

    @property
    def model_id(self) -> str:
        """Provider string of the judge model."""
        ...

    def judge(self, idea: str, first: bytes, second: bytes) -> Judgement:
        """A verdict about (first, second)."""
        ...


def add_images_arguments(which: argparse._SubParsersAction[argparse.ArgumentParser], epilog: str) -> None:
    """Register `eval images`."""
    images = which.add_parser(
        "images",
        help="draw raw and composed prompts on Bedrock and have a Claude vision model judge them",
        description=IMAGES_HELP,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    images.add_argument("--live", action="store_true", help="really call Bedrock (required)")
    images.add_argument("--n", type=int, default=20, metavar="N", help="ideas to draw (default 20)")
    splits = ("tuning", "heldout", "all")
    images.add_argument("--split", choices=splits, default="heldout", help="default heldout")
    images.add_argument("--ideas", type=Path, default=IDEAS_PATH, help="idea set JSON (default: the repo's)")
    images.add_argument("--judge", help="judge model, bedrock:<id> with vision (default: IMAGINE_CHAT_MODEL)")
    images.add_argument("--seed", type=int, default=7, help="seed of the image seeds and orders (default 7)")
    images.add_argument("--out", type=Path, default=Path("eval-images"), help="where images and report go")
    images.add_argument("--yes", action="store_true", help="spend the estimated cost without asking")


@dataclass(frozen=True)
class Estimate:
    """The estimated cost of a run, in USD, and how it was made."""

    ideas: int
    chat_usd: float
    judge_usd: float
    image_usd: float
    priced: bool

    @property
    def total_usd(self) -> float:
        """All of it."""
        return round(self.chat_usd + self.judge_usd + self.image_usd, 4)

    def line(self) -> str:
        """One line for the terminal."""
        note = "" if self.priced else " (a model has no known price: counted as $0)"
        return (
            f"Estimated cost: ${self.total_usd:.2f} for {self.ideas} ideas: {2 * self.ideas} images "
            f"${self.image_usd:.2f}, {self.ideas} compose calls ${self.chat_usd:.2f}, "
            f"{2 * self.ideas} judge calls ${self.judge_usd:.2f}{note}"
        )


def estimate(ideas: int, chat_model: str, image_model: str, judge_model: str) -> Estimate:
    """List-price estimate (bot/engine/pricing.py): one compose call, two images, two judge calls an idea."""
    chat = estimate_cost(chat_model, *COMPOSE_TOKENS, image_model, 2)
    judge = estimate_cost(judge_model, 2 * JUDGE_TOKENS[0], 2 * JUDGE_TOKENS[1], None, 0)
    priced = chat.priced and judge.priced
    return Estimate(ideas, ideas * chat.chat_usd, ideas * judge.chat_usd, ideas * chat.image_usd, priced)


def wilson(successes: float, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion ((0, 1) when there is no trial)."""
    if total <= 0:
        return 0.0, 1.0
    p = successes / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    denominator = 1 + z * z / total
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass
class PairResult:
    """One idea: the two images, the composed prompt, the verdicts in both orders and the usage."""

    idea: str
    prompt: str
    seed: int
    sheet: Path
    verdicts: list[dict[str, str]] = field(default_factory=list)  # per order: criterion -> composed/raw/tie
    compose_tokens: tuple[int, int] = (0, 0)
    judge_tokens: tuple[int, int] = (0, 0)

    def outcome(self, criterion: str) -> str:
        """'win': both orders prefer the composed prompt; 'loss': both prefer the raw idea; else 'split'."""
        picks = {v[criterion] for v in self.verdicts}
        return "win" if picks == {"composed"} else "loss" if picks == {"raw"} else "split"


def _small_png(data: bytes) -> bytes:
    """The image as a PNG at most JUDGE_SIZE pixels a side."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((JUDGE_SIZE, JUDGE_SIZE))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="PNG")
        return out.getvalue()


def _pick(choice: str, composed_first: bool) -> str:
    """A verdict about (first, second) as composed / raw / tie."""
    if choice == "tie":
        return "tie"
    return "composed" if (choice == "first") == composed_first else "raw"


def judge_pairs(
    ideas: Sequence[EvalIdea],
    search: Search,
    chat: ChatModel,
    images: ImageModel,
    judge: PairJudge,
    out: Path,
    rng: random.Random,
    progress: Any = lambda text: None,
) -> list[PairResult]:
    """Compose, draw both prompts with one seed, judge both orders, and keep a contact sheet per idea."""
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for number, idea in enumerate(ideas, start=1):
        hits: tuple[HitForPrompt, ...] = tuple(search(idea.text))
        limit = prompt_limit(images.model_id)
        request = ComposeRequest(
            kind="start", idea=idea.text, hits=hits, image_model=images.model_id, max_prompt_chars=limit
        )
        composed = chat.compose(request)
        draft = composed.drafts[0]
        seed = rng.randint(1, 4_294_967_294)
        raw = images.generate(ImageRequest(idea.text[:limit], "", "1:1", seed))[0].data
        mine = images.generate(ImageRequest(draft.prompt, draft.negative_prompt, "1:1", seed))[0].data
        slug = re.sub(r"[^a-z0-9]+", "-", idea.text.lower()).strip("-")[:40] or "idea"
        stem = out / f"{number:02d}-{slug}"
        stem.with_name(stem.name + "-raw.png").write_bytes(raw)
        stem.with_name(stem.name + "-composed.png").write_bytes(mine)
        sheet = stem.with_name(stem.name + "-sheet.png")
        sheet.write_bytes(contact_sheet([raw, mine], labels=["raw idea", "composed prompt"]))
        result = PairResult(idea.text, draft.prompt, seed, sheet)
        result.compose_tokens = (composed.input_tokens, composed.output_tokens)
        small = {True: _small_png(mine), False: _small_png(raw)}
        orders = [True, False]
        rng.shuffle(orders)
        tokens_in = tokens_out = 0
        for composed_first in orders:
            verdict = judge.judge(idea.text, small[composed_first], small[not composed_first])
            tokens_in, tokens_out = tokens_in + verdict.input_tokens, tokens_out + verdict.output_tokens
            result.verdicts.append(
                {
                    "composed_first": "yes" if composed_first else "no",
                    "adherence": _pick(verdict.adherence, composed_first),
                    "appeal": _pick(verdict.appeal, composed_first),
                    "reason": verdict.reason,
                }
            )
        result.judge_tokens = (tokens_in, tokens_out)
        results.append(result)
        progress(f"eval images: {number} of {len(ideas)} ideas")
    return results


def report(results: Sequence[PairResult], chat: str, image: str, judge: str) -> tuple[str, dict[str, Any]]:
    """The markdown report and its JSON twin: win rates with 95% intervals, per idea, and the cost."""
    summary: dict[str, Any] = {"ideas": len(results), "chat_model": chat, "image_model": image}
    summary["judge"] = judge
    lines = [f"# Image evaluation: {chat} on {image}, judged by {judge}", ""]
    lines += ["| criterion | composed wins | raw wins | split | win rate (decided) | 95% interval |"]
    lines += ["|---|---|---|---|---|---|"]
    for criterion in ("adherence", "appeal"):
        outcomes = [r.outcome(criterion) for r in results]
        wins, losses = outcomes.count("win"), outcomes.count("loss")
        decided = wins + losses
        low, high = wilson(wins, decided)
        rate = f"{wins / decided:.0%}" if decided else "n/a"
        lines.append(
            f"| {criterion} | {wins} | {losses} | {outcomes.count('split')} | {rate} | {low:.0%}–{high:.0%} |"
        )
        summary[criterion] = {
            "wins": wins,
            "losses": losses,
            "splits": outcomes.count("split"),
            "win_rate": round(wins / decided, 4) if decided else None,
            "interval95": [round(low, 4), round(high, 4)],
        }
    chat_in = sum(r.compose_tokens[0] for r in results)
    chat_out = sum(r.compose_tokens[1] for r in results)
    spent = estimate_cost(chat, chat_in, chat_out, image, 2 * len(results))
    judged = estimate_cost(
        judge, sum(r.judge_tokens[0] for r in results), sum(r.judge_tokens[1] for r in results), None, 0
    )
    cost = round(spent.total_usd + judged.total_usd, 4)
    summary["cost_usd"] = cost
    lines += ["", f"Cost (list prices, an estimate): ${cost:.2f}", ""]
    lines += ["| # | idea | adherence | appeal | sheet |", "|---|---|---|---|---|"]
    for number, r in enumerate(results, start=1):
        lines.append(
            f"| {number} | {r.idea} | {r.outcome('adherence')} | {r.outcome('appeal')} | {r.sheet} |"
        )
    summary["per_idea"] = [
        {"idea": r.idea, "prompt": r.prompt, "seed": r.seed, "sheet": str(r.sheet), "verdicts": r.verdicts}
        for r in results
    ]
    return "\n".join(lines), summary


def run_images(args: argparse.Namespace, config: Config) -> int:
    """Estimate, ask for --yes, then draw, judge and report."""
    if not args.live:
        sys.stderr.write(
            "error: eval images draws real images and calls a vision model on Bedrock, which costs money: "
            "run it with --live (it prints the estimated cost first and needs --yes)\n"
        )
        return 2
    chat_provider, _ = split_provider(config.chat_model, "IMAGINE_CHAT_MODEL", PROVIDERS_CHAT)
    image_provider, _ = split_provider(config.image_model, "IMAGINE_IMAGE_MODEL", PROVIDERS_IMAGE)
    judge_model = args.judge or config.chat_model
    judge_provider, judge_id = split_provider(judge_model, "--judge", PROVIDERS_CHAT)
    if "offline" in (chat_provider, image_provider, judge_provider):
        raise BotError(NEEDS_BEDROCK)
    if args.n < 1:
        raise BotError("--n must be at least 1")
    ideas = load_ideas(args.ideas, args.split)[: args.n]
    cost = estimate(len(ideas), config.chat_model, config.image_model, judge_model)
    sys.stdout.write(cost.line() + "\n")
    if not args.yes:
        sys.stdout.write("Nothing was drawn. Run again with --yes to spend it.\n")
        return 2
    from rich.console import Console

    from bot.wiring import build_chat_model, build_image_model, build_retriever
    from bot.writing.vision_judge import BedrockVisionJudge

    err = Console(stderr=True)
    chat, images = build_chat_model(config), build_image_model(config)
    judge = BedrockVisionJudge(judge_id, region=config.aws_region, endpoint_url=config.bedrock_endpoint_url)
    retriever = build_retriever(config)

    search = library_search(retriever)
    try:
        results = judge_pairs(
            ideas, search, chat, images, judge, args.out, random.Random(args.seed), err.print
        )
    finally:
        retriever.close()
    text, data = report(results, chat.model_id, images.model_id, judge.model_id)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.md").write_text(text + "\n", encoding="utf-8")
    (args.out / "report.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(text + f"\n\nReport, images and contact sheets in {args.out}/\n")
    return 0
