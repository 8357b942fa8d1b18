"""Team avatar brainstorm: N candidates in one style, their numbered contact sheet and the picked winner."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.engine.image_files import write_image, write_sheet
from bot.engine.ports import (
    ComposeRequest,
    HitForPrompt,
    ImageModel,
    ImageRequest,
    PromptDraft,
    ThreadRecord,
    TurnMemory,
    TurnRecord,
    UserDefaults,
)
from bot.engine.turn_errors import BotError
from bot.engine.turn_log import StageTimes
from bot.engine.turns import StoredImage, latest_hits, memory_of

MAX_CANDIDATES = 9
ContactSheet = Callable[[Sequence[bytes]], bytes]


def brainstorm_request(
    theme: str, hits: tuple[HitForPrompt, ...], count: int, defaults: UserDefaults
) -> ComposeRequest:
    """The chat request for `count` candidates (kept within 2..MAX_CANDIDATES) in one shared style."""
    count = max(2, min(count, MAX_CANDIDATES))
    return ComposeRequest(kind="brainstorm", idea=theme, hits=hits, candidates=count, defaults=defaults)


def pick_request(
    thread: ThreadRecord, turns: Sequence[TurnRecord], number: int
) -> tuple[ComposeRequest, int | None]:
    """The refine request for candidate #number of the thread's last brainstorm, and that candidate's seed."""
    candidates = [turn for turn in turns if turn.kind == "brainstorm"]
    if not candidates:
        raise BotError("this thread has no brainstorm to pick from")
    drafts = candidates[-1].params.get("candidates", [])
    if not 1 <= number <= len(drafts):
        raise BotError(f"there is no candidate #{number} (1-{len(drafts)})")
    winner = drafts[number - 1]
    history = [
        *memory_of(turns),
        TurnMemory("pick", f"picked #{number}", winner["prompt"], winner.get("negative_prompt")),
    ]
    request = ComposeRequest(
        kind="refine",
        idea=thread.idea,
        instruction=f"refine candidate #{number}, keep its subject and the shared style",
        history=history,
        hits=latest_hits(turns),
    )
    return request, winner.get("seed")


@dataclass(frozen=True)
class Candidates:
    """A brainstorm's drawn candidates: their stored images, the turn's params and the contact sheet."""

    images: tuple[StoredImage, ...]
    params: dict[str, Any]
    sheet: Path | None


@dataclass(frozen=True)
class CandidateDrawer:
    """Draws one image per brainstorm candidate and lays them out on a numbered contact sheet."""

    image_dir: Path
    stages: StageTimes
    new_seed: Callable[[], int]
    contact_sheet: ContactSheet | None = None

    def draw(self, images: ImageModel, team_id: str, drafts: Sequence[PromptDraft]) -> Candidates:
        """Generate and store each candidate's image, then the contact sheet when one is configured."""
        stored: list[StoredImage] = []
        candidates: list[dict[str, Any]] = []
        for number, draft in enumerate(drafts, start=1):
            seed = self.new_seed()
            with self.stages.stage("draw"):
                image = images.generate(
                    ImageRequest(draft.prompt, draft.negative_prompt, draft.aspect_ratio, seed, draft.style)
                )[0]
                stored.append(write_image(self.image_dir, team_id, image))
            candidates.append(
                {
                    "number": number,
                    "prompt": draft.prompt,
                    "negative_prompt": draft.negative_prompt,
                    "aspect_ratio": draft.aspect_ratio,
                    "style": draft.style,
                    "seed": image.seed,
                    "image_sha256": stored[-1].record.sha256,
                }
            )
        sheet = None
        if self.contact_sheet is not None:
            sheet_bytes = self.contact_sheet([s.path.read_bytes() for s in stored])
            sheet = write_sheet(self.image_dir, team_id, sheet_bytes)
        params = {"candidates": candidates, "contact_sheet": str(sheet) if sheet else None}
        return Candidates(tuple(stored), params, sheet)
