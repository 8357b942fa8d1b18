"""Block Kit messages of the Slack app: pure builders of chat payloads (no Slack client, no I/O)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

from bot.engine.options import MAX_IMAGES, MAX_SEED
from bot.engine.ports import ASPECT_RATIOS, HitForPrompt, PromptDraft
from bot.engine.turns import TurnResult
from bot.slack import ids
from bot.writing.grounding import borrowed_line_of
from retrieval.craft import borrowable_line

Block = dict[str, Any]


class Message(TypedDict):
    """A chat payload: `text` for notifications and screen readers, plus the blocks."""

    text: str
    blocks: list[Block]


# Block Kit limits (docs.slack.dev/reference/block-kit); lengths are counted in UTF-16 units to be safe.
SECTION_TEXT = 3000
CONTEXT_TEXT = 3000
CONTEXT_ELEMENTS = 10
HEADER_TEXT = 150
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
# Slack rejects messages whose blocks hold ~13k characters in total (msg_blocks_too_long, bolt-js #2509).
MESSAGE_TEXT_BUDGET = 12_000
FALLBACK_CHARS = 1000
HIT_CHARS = 700
CANDIDATE_CHARS = 600
PROMPT_CHARS = 2800
NEGATIVE_CHARS = 1000
MAX_HITS = 10
REFERENCE_CHARS = 90  # each new reference of a refinement, on one shared line
VOTE_EMOJI = ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
STAGES = {
    "search": ":mag: Searching the prompt library",
    "compose": ":writing_hand: Writing the prompt",
    "draw": ":art: Drawing",
    "upload": ":outbox_tray: Uploading the image",
    "sheet": ":frame_with_picture: Making the contact sheet",
}

_DROP = [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CLEAN = dict.fromkeys(_DROP) | {9: " ", 10: "\n", 13: "\n", 0x2028: "\n", 0x2029: "\n"}
_EXTENDERS = frozenset(["\u200d", *map(chr, range(0x1F3FB, 0x1F400)), *map(chr, range(0xE0020, 0xE0080))])
_REGIONAL = "".join(chr(c) for c in range(0x1F1E6, 0x1F200))
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
_SLACK_ID = re.compile(r"[A-Z0-9]{2,30}")


# --- text --------------------------------------------------------------------------------------------


def clean(text: str) -> str:
    """The text without control, bidi-override or lone surrogate characters; newlines kept."""
    text = str(text).replace("\r\n", "\n").translate(_CLEAN)
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "ignore")


def one_line(text: str) -> str:
    """The cleaned text with every run of whitespace folded into one space."""
    return " ".join(clean(text).split())


def escape(text: str) -> str:
    """Cleaned text safe for mrkdwn: &, < and > as entities, so no mention or link can be injected."""
    return clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def units(text: str) -> int:
    """Length in UTF-16 code units (what Slack's limits count at most)."""
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _extends(ch: str) -> bool:
    """True for a character that continues the previous one (mark, joiner, selector, skin tone, tag)."""
    return ch in _EXTENDERS or unicodedata.category(ch)[0] == "M"


def _boundary(text: str, end: int) -> int:
    """The nearest index at or before `end` that splits no emoji sequence, flag or accented letter."""
    while 0 < end < len(text) and (_extends(text[end]) or text[end - 1] == "\u200d" or _half_flag(text, end)):
        end -= 1
    return end


def _half_flag(text: str, end: int) -> bool:
    """True when `end` falls between the two regional indicators of a flag."""
    run = 0
    while text[end] in _REGIONAL and run < end and text[end - 1 - run] in _REGIONAL:
        run += 1
    return run % 2 == 1


def clip(text: str, limit: int) -> str:
    """The longest prefix within `limit` UTF-16 units that splits no emoji sequence or letter."""
    if units(text) <= limit:
        return text
    used = end = 0
    while used + units(text[end]) <= limit:
        used, end = used + units(text[end]), end + 1
    return text[: _boundary(text, end)]


def truncate(text: str, limit: int, ellipsis: str = "…") -> str:
    """Escaped or markup text cut to `limit` units with an ellipsis, never inside an entity or <markup>."""
    if units(text) <= limit:
        return text
    end = len(clip(text, max(0, limit - units(ellipsis))))
    while True:
        amp, lt = text.rfind("&", 0, end), text.rfind("<", 0, end)
        entity = _ENTITY.match(text, amp) if amp != -1 else None
        if entity and entity.end() > end:
            end = _boundary(text, amp)
        elif lt > text.rfind(">", 0, end):
            end = _boundary(text, lt)
        else:
            return text[:end] + ellipsis


def user_line(text: str, limit: int) -> str:
    """Untrusted text on one line, escaped and cut for a mrkdwn field."""
    return truncate(escape(one_line(text)), limit)


# --- blocks ----------------------------------------------------------------------------------------------


def mrkdwn(text: str) -> Block:
    """A mrkdwn text object; verbatim so bare @here, #channel or URLs are never auto-linked."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def plain(text: str, limit: int = SECTION_TEXT) -> Block:
    """A plain_text object (emoji shortcodes rendered) cut to `limit`."""
    return {"type": "plain_text", "text": truncate(clean(text), limit) or " ", "emoji": True}


def section(text: str, block_id: str | None = None, accessory: Block | None = None) -> Block:
    """A section block of mrkdwn text."""
    extra = {"block_id": block_id, "accessory": accessory}
    return {"type": "section", "text": mrkdwn(truncate(text, SECTION_TEXT))} | {
        k: v for k, v in extra.items() if v
    }


def context(*texts: str, block_id: str | None = None) -> Block:
    """A context block of mrkdwn texts (at most ten)."""
    elements = [mrkdwn(truncate(text, CONTEXT_TEXT)) for text in texts if text][:CONTEXT_ELEMENTS]
    return {"type": "context", "elements": elements} | ({"block_id": block_id} if block_id else {})


def header(text: str) -> Block:
    """A header block."""
    return {"type": "header", "text": plain(text, HEADER_TEXT)}


def button(
    text: str, action_id: str, value: str, style: str | None = None, label: str | None = None
) -> Block:
    """A button; ValueError when the value exceeds Slack's limit (a cut value would be corrupt)."""
    if units(value) > BUTTON_VALUE:
        raise ValueError(f"button value of {units(value)} characters exceeds {BUTTON_VALUE}")
    element: Block = dict(type="button", text=plain(text, BUTTON_TEXT), action_id=action_id, value=value)
    if style:
        element["style"] = style
    if label:
        element["accessibility_label"] = truncate(clean(label), BUTTON_TEXT)
    return element


def actions(block_id: str, *elements: Block) -> Block:
    """An actions block."""
    return {"type": "actions", "block_id": block_id, "elements": list(elements)}


def _texts(blocks: Iterable[Block]) -> Iterable[str]:
    """The visible texts of section, header and context blocks in order."""
    for block in blocks:
        objects = [block.get("text"), *(block["elements"] if block["type"] == "context" else [])]
        yield from (str(o["text"]) for o in objects if isinstance(o, dict) and "text" in o)


def fallback_text(blocks: Sequence[Block], limit: int = FALLBACK_CHARS) -> str:
    """The `text` Slack needs beside blocks (notifications, screen readers), derived from the blocks."""
    joined = "\n".join(text.strip() for text in _texts(blocks) if text.strip())
    return truncate(joined, limit) or "imagine"


def message(blocks: list[Block], text: str | None = None) -> Message:
    """A payload; `text` (already escaped mrkdwn) defaults to one derived from the blocks."""
    return {"text": truncate(text, FALLBACK_CHARS) if text else fallback_text(blocks), "blocks": blocks}


def _offline(labels: Sequence[str]) -> Block:
    """The visible offline-preview notice."""
    detail = "; ".join(user_line(label, 300) for label in labels if label)
    return context(f":warning: *Offline preview*{': ' + detail if detail else ''}", block_id="offline")


# --- ephemeral replies -------------------------------------------------------------------------------------


def help_message() -> Message:
    """The ephemeral `/imagine help` reply."""
    ratios = ", ".join(ASPECT_RATIOS)
    blocks = [
        header(":art: imagine: ideas into images"),
        section(
            f"*`/imagine {escape('<idea>')}`* finds the closest prompts in our library, writes a Stable "
            "Diffusion prompt from them and draws it in a thread. Reply in the thread to refine it."
        ),
        section(
            "*Options*\n"
            f"• `--ar W:H` aspect ratio ({ratios})\n"
            f"• `--seed N` repeat a picture (0 to {MAX_SEED})\n"
            "• `--no words` things to keep out, comma separated\n"
            "• `--style name` a style, e.g. `--style watercolor`\n"
            f"• `--n 1-{MAX_IMAGES}` images at once\n"
            "• `--model id` another image model: `sd3.5`, `core`, `ultra`, `nova` or "
            f"`{escape('bedrock:<id>')}`"
        ),
        section(
            "*More*\n"
            f"• `/imagine --avatar {escape('<theme>')}` or `/avatar {escape('<theme>')}`: team avatar "
            "candidates (6, or `--n 2-9`); vote with :one: … :nine: and *Pick winner*\n"
            "• `/imagine --defaults`: this channel's defaults\n"
            "• Buttons under each image: Re-roll, Variations, Edit prompt, Upscale, Remove background, "
            "Save to library, :+1: / :-1:\n"
            '• Reply to refine: the seed is kept; "swap the hat for a crown", "make the car red", '
            '"remove the text", "wider" or "sharper" edit the image itself, "start over" draws anew\n'
            "• Post a picture or sketch in the thread: use it as a sketch, as a style, or have it described\n"
            "• My *Home* tab: your recent images, saved prompts and personal defaults"
        ),
        context("Example: `/imagine a cozy reading nook on a rainy evening --ar 3:2 --no people`"),
    ]
    return message(blocks, escape("How to use /imagine: /imagine <idea> [--ar W:H] [--seed N] …"))


def option_error(text: str) -> Message:
    """The ephemeral reply to bad options; `text` names the option."""
    blocks = [section(f":warning: {user_line(text, 1500)}"), context("`/imagine help` lists every option.")]
    return message(blocks)


def not_in_channel(channel_id: str, bot_name: str) -> Message:
    """The ephemeral reply when the bot cannot post where /imagine was used, saying what to do."""
    name = one_line(bot_name).lstrip("@") or "imagine"
    invite = f"`/invite @{user_line(name, 80)}`"
    if channel_id.startswith("D"):
        text = f"(add me there with {invite}) or in my *Messages* tab."
        blocks = [section(f":wave: I can't post in a direct message. Use `/imagine` in a channel {text}")]
    else:
        where = f"<#{channel_id}>" if _SLACK_ID.fullmatch(channel_id) else "this channel"
        blocks = [
            section(f":wave: I'm not in {where}, so I can't post there. Run {invite} there, then try again."),
            context("In a private channel, a member has to invite me."),
        ]
    return message(blocks)


def queued(position: int) -> Message:
    """The visible 'queued, position N' notice."""
    where = "You're next in the queue" if position <= 1 else f"Queued, position *{position}*"
    return message([context(f":hourglass: {where}. Your job will start shortly.", block_id="status")])


def quota_reached(limit: int) -> Message:
    """The ephemeral daily-quota notice."""
    text = f":no_entry_sign: You've used today's *{limit}* images. The quota resets tomorrow"
    return message([section(f"{text}; your saved prompts and Home tab still work.")])


def error_message(text: str, retry_value: str | None = None) -> Message:
    """An error in plain words with an optional Retry button carrying `retry_value`."""
    blocks = [section(f":x: {user_line(text, 2000)}")]
    if retry_value is not None:
        blocks.append(actions("error_actions", button(":repeat: Retry", ids.ACTION_RETRY, retry_value)))
    return message(blocks)


# --- thread messages -------------------------------------------------------------------------------------


def thread_root(idea: str, user_id: str, options_summary: str = "") -> Message:
    """The channel message that roots a thread: the idea and who asked."""
    who = f"<@{user_id}>" if _SLACK_ID.fullmatch(user_id) else "someone"
    blocks = [section(f":frame_with_picture: {who} imagined:\n>{user_line(idea, 2500)}")]
    if summary := user_line(options_summary.replace("`", "'"), 500):
        blocks.append(context(f"`{summary}`"))
    blocks.append(context("Reply in this thread to refine it; the image's buttons re-roll, vary or edit."))
    return message(blocks)


def working_status(stage: str) -> Message:
    """A status line while working; `stage` is a key of STAGES or free text."""
    text = STAGES.get(stage) or f":hourglass_flowing_sand: {user_line(stage, 200)}"
    return message([context(f"{text}…", block_id="status")])


def hits_message(thread_id: int, hits: Sequence[HitForPrompt]) -> Message:
    """The closest library prompts, numbered, each with a 'Use #n' button valued '<thread_id>:<n>'."""
    if not hits:
        return message([context(":books: No close prompts in the library for this one; writing it fresh.")])
    intro = ":books: *Closest prompts in the library*: press *Use #n* to redo your idea in its manner."
    blocks = [section(intro)]
    for index, hit in enumerate(hits[:MAX_HITS], start=1):
        phrases = borrowable_line(hit.prompt)
        borrow = f"\n:art: _borrow: {user_line(phrases, 200)}_" if phrases else ""
        source = f"\n_from {user_line(hit.source, 80)}_" if hit.source else ""
        use = button(f"Use #{hit.number}", ids.ACTION_USE_HIT, f"{thread_id}:{hit.number}")
        text = f"*#{hit.number}*  {user_line(hit.prompt, HIT_CHARS)}{borrow}{source}"
        blocks.append(section(text, f"hit_{index}", use))
    return message(blocks, f"{len(hits[:MAX_HITS])} close prompts from the library")


def new_references_line(hits: Sequence[HitForPrompt]) -> str:
    """One line for the library prompts a refinement found for its new direction."""
    listed = " · ".join(f"*#{h.number}* {user_line(h.prompt, REFERENCE_CHARS)}" for h in hits)
    first = hits[0].number
    return f":mag: New references: {listed} (reply _more like #{first}_ to borrow one's look)"


def result_message(
    thread_id: int, result: TurnResult, offline_labels: Sequence[str] | None = None
) -> Message:
    """What goes with an image: prompt, negative, seed, model, size, time, and the action buttons."""
    turn = result.turn
    prompt = turn.prompt or (result.drafts[0].prompt if result.drafts else "")
    labels = list(result.labels if offline_labels is None else offline_labels)
    offline = bool(labels) or result.image_offline or result.chat_offline
    blocks: list[Block] = [_offline(labels or ["no model was called"])] if offline else []
    blocks.append(context(*_details(result, prompt), block_id="details"))
    borrowed = borrowed_line_of(result)
    if borrowed:
        blocks.append(context(f":books: {user_line(borrowed, 600)}", block_id="borrowed"))
    if result.new_hits:
        blocks.append(context(new_references_line(result.new_hits), block_id="new_references"))
    value = f"{thread_id}:{turn.id or 0}"
    blocks.append(
        actions(
            "result_actions",
            button(":game_die: Re-roll", ids.ACTION_REROLL, value),
            button(":twisted_rightwards_arrows: Variations", ids.ACTION_VARY, value),
            button(":pencil2: Edit prompt", ids.ACTION_EDIT_PROMPT, value),
            button(":arrow_up_small: Upscale", ids.ACTION_UPSCALE, value),
            button(":scissors: Remove background", ids.ACTION_REMOVE_BACKGROUND, value),
            button(":floppy_disk: Save to library", ids.ACTION_SAVE_PROMPT, value),
            button("👍", ids.ACTION_FEEDBACK_UP, value, label="Good result"),
            button("👎", ids.ACTION_FEEDBACK_DOWN, value, label="Bad result"),
        )
    )
    flag = "[offline preview] " if offline else ""
    return message(blocks, f"{flag}Image ready: {user_line(prompt, 300)}")


def _details(result: TurnResult, prompt: str) -> list[str]:
    """The context texts of a result: prompt, negative prompt, and one line of parameters."""
    turn = result.turn
    texts = [f"*Prompt:* {user_line(prompt, PROMPT_CHARS) or '_(empty)_'}"]
    if turn.negative_prompt:
        texts.append(f"*Negative:* {user_line(turn.negative_prompt, NEGATIVE_CHARS)}")
    records = [image.record for image in result.images]
    seeds = ", ".join(str(record.seed) for record in records) or str(turn.params.get("seed", "n/a"))
    model = records[0].model_id if records else turn.image_model or "n/a"
    ratio = turn.params.get("aspect_ratio") or (result.drafts[0].aspect_ratio if result.drafts else "")
    size = f"{records[0].width}×{records[0].height} " if records else ""
    size += f"({ratio})" if ratio else ""
    parts = [
        f"*Seed{'s' if len(records) > 1 else ''}* {seeds}",
        f"*Model* {user_line(model, 200)}",
        f"*Size* {user_line(size, 40) or 'n/a'}",
        f"*Time* {result.elapsed_ms / 1000:.1f} s",
    ]
    parts += [f"*Style* {user_line(str(turn.params['style']), 100)}"] if turn.params.get("style") else []
    parts += [f"*Prompt by* {user_line(turn.chat_model, 200)}"] if turn.chat_model else []
    return [*texts, " · ".join(parts)]


def brainstorm_message(
    thread_id: int, drafts: Sequence[PromptDraft], offline_labels: Sequence[str] = ()
) -> Message:
    """Numbered avatar candidates, a vote button each (value '<thread_id>:<n>') and 'Pick winner'."""
    if not drafts:
        raise ValueError("a brainstorm needs at least one candidate")
    shown = list(drafts[: len(VOTE_EMOJI)])
    last = VOTE_EMOJI[len(shown) - 1]
    blocks: list[Block] = [_offline(offline_labels)] if offline_labels else []
    intro = f"*{len(shown)} avatar candidates* in one shared style. Vote with :one: … :{last}: reactions"
    blocks.append(section(f":busts_in_silhouette: {intro} or the buttons, then press *Pick winner*."))
    if len({draft.style for draft in shown}) == 1 and shown[0].style:
        blocks.append(context(f"Shared style: {user_line(shown[0].style, 300)}"))
    for number, draft in enumerate(shown, start=1):
        vote = button(f"Vote #{number}", ids.ACTION_VOTE, f"{thread_id}:{number}")
        text = f":{VOTE_EMOJI[number - 1]}: {user_line(draft.prompt, CANDIDATE_CHARS)}"
        blocks.append(section(text, f"candidate_{number}", vote))
    pick = button(":trophy: Pick winner", ids.ACTION_PICK_WINNER, str(thread_id), "primary")
    blocks.append(actions("brainstorm_actions", pick))
    return message(blocks, f"{len(shown)} avatar candidates: vote by number, then Pick winner")


def winner_message(number: int, votes: Mapping[int, int]) -> Message:
    """The tally and the winner, which is refined next in the thread."""
    count = votes.get(number, 0)
    won = f"*#{number} wins* with {count} vote{'s' if count != 1 else ''}"
    headline = won if sum(votes.values()) else f"No votes were cast, so I'm going with *#{number}*"
    tally = " · ".join(f":{VOTE_EMOJI[n - 1]}: {votes[n]}" for n in sorted(votes) if 0 < n <= len(VOTE_EMOJI))
    return message(
        [section(f":trophy: {headline}. Refining it now…"), *([context(f"Votes: {tally}")] * bool(tally))]
    )
