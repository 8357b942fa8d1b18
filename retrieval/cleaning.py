"""Prompt text cleaning, dedupe keys, stable point ids and near-duplicate grouping."""

from __future__ import annotations

import logging
import math
import re
import unicodedata
import uuid
from array import array
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

__all__ = [
    "clean_prompt",
    "collapse_near_duplicates",
    "dedupe_key",
    "normalize_whitespace",
    "point_id",
]

# Fixed namespace: uuid5(NAMESPACE_URL, "https://imagine-bot/prompt-library"). Never change it, or every
# point id changes and a re-ingest duplicates the whole index.
_POINT_NAMESPACE = uuid.UUID("b5b3205b-ae98-58d2-9c95-e7aea7775a5a")

# Zero-width and invisible characters that carry no meaning in a prompt (ZWJ/ZWNJ are kept: emoji, Persian).
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u180e\u200b\u2060\u2061\u2062\u2063\u2064\ufeff"), None)
_WS_RE = re.compile(r"\s+")
_DOUBLE_QUOTES = '"“”„‟«»「」『』'
_SINGLE_QUOTES = "'`‘’‚‛‹›"
# A1111-style "..., Negative prompt: ..." and "Steps: 20, Sampler: ..." tails are not part of the prompt.
_TAIL_RE = re.compile(r"(?:\bnegative\s+prompt\s*:|\bsteps\s*:\s*\d+\s*,\s*sampler\s*:).*$", re.I | re.S)
_BULLETS = "-*•·▪►▸‣⁃◦>+–—"
# Leading "prompt:", "prompt example -", "positive prompt:", "Prompt #3:"... A separator is required, so
# "prompt engineer with no face" is left alone.
_LABEL_RE = re.compile(
    r"(?:positive\s+|sd\s+|stable\s+diffusion\s+|image\s+|final\s+|example\s+)?prompts?"
    r"(?:\s+(?:example|text|idea)s?)?(?:\s*#?\s*\d{1,3})?\s*(?:[:：=>]+|[-–—]+(?=\s))\s*",
    re.IGNORECASE,
)
_NUMBERED_RE = re.compile(r"\d{1,3}[.)]\s+(?=[^\W\d_])")
_BULLET_RE = re.compile(rf"(?:[{re.escape(_BULLETS)}]+\s+|\*+(?=\S))")
_LEAD_JUNK = ",;|/\\:. "
_TRAIL_JUNK = ",;|/\\:+=-–—* "
_WORD_RE = re.compile(r"\w+")
_MAX_PASSES = 8

# dedupe_key: ASCII punctuation and symbols become spaces (so "a , b" == "a, b" == "a b"); apostrophes vanish.
_KEY_TABLE: dict[int, str | None] = {
    cp: " " for cp in range(0x21, 0x7F) if not chr(cp).isalnum() and chr(cp) not in "'"
}
_KEY_TABLE.update({cp: " " for cp in range(0xA0, 0x3100) if unicodedata.category(chr(cp)).startswith("P")})
_KEY_TABLE.update(dict.fromkeys(map(ord, "'’‘`´"), None))
_KEY_TABLE.update(_INVISIBLE)


def normalize_whitespace(text: str) -> str:
    """Collapse every run of Unicode whitespace to one space and trim both ends."""
    return _WS_RE.sub(" ", text).strip()


def _strip_controls(text: str) -> str:
    """Replace control characters by spaces and drop invisible format characters."""
    text = text.translate(_INVISIBLE)
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)


def _strip_edges(text: str) -> str:
    """One pass of removing labels, bullets, surrounding quotes and dangling punctuation."""
    text = text.lstrip(_LEAD_JUNK)
    for pattern in (_NUMBERED_RE, _BULLET_RE, _LABEL_RE):
        match = pattern.match(text)
        if match:
            text = text[match.end() :]
    text = text.rstrip(_TRAIL_JUNK)
    return _strip_quotes(text).strip()


def _strip_quotes(text: str) -> str:
    """Remove a surrounding quote pair, or an unbalanced double quote at either end."""
    if len(text) < 2 or not text.strip(_DOUBLE_QUOTES + _SINGLE_QUOTES + " "):
        return text.strip(_DOUBLE_QUOTES + _SINGLE_QUOTES + " ")
    first, last = text[0], text[-1]
    for family in (_DOUBLE_QUOTES, _SINGLE_QUOTES):
        if first in family and last in family:
            inner = text.lstrip(family).rstrip(family)
            if inner and not any(q in inner for q in family):
                return inner
        count = sum(text.count(q) for q in family)
        if family is _DOUBLE_QUOTES and count % 2 == 1:
            if first in family:
                return text[1:]
            if last in family:
                return text[:-1]
    return text


def clean_prompt(
    raw: object, *, min_chars: int = 12, min_words: int = 3, max_chars: int = 1000
) -> tuple[str | None, str | None]:
    """Return (cleaned text, None) or (None, reason) with reason in empty/too_short/too_long/not_text."""
    if raw is None or (isinstance(raw, float) and math.isnan(raw)):
        return None, "empty"
    if isinstance(raw, bytes | bytearray):
        try:
            raw = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return None, "not_text"
    if not isinstance(raw, str):
        return None, "not_text"
    text = normalize_whitespace(_strip_controls(unicodedata.normalize("NFKC", raw)))
    tail = _TAIL_RE.search(text)
    if tail:
        text = text[: tail.start()].rstrip()
    for _ in range(_MAX_PASSES):
        stripped = _strip_edges(text)
        if stripped == text:
            break
        text = stripped
    if not text:
        return None, "empty"
    if len(text) > max_chars:
        return None, "too_long"
    if len(text) < min_chars or len(_WORD_RE.findall(text)) < min_words:
        return None, "too_short"
    return text, None


def dedupe_key(text: str) -> str:
    """Normalized key for exact dedupe: NFKC, casefold, punctuation-insensitive, collapsed whitespace."""
    key = unicodedata.normalize("NFKC", text.translate(_INVISIBLE)).casefold()
    key = unicodedata.normalize("NFKC", key).translate(_KEY_TABLE)
    return normalize_whitespace(key)


def point_id(text: str) -> str:
    """Stable UUID (uuid5 over dedupe_key) so re-ingesting the same prompt overwrites the same point."""
    return str(uuid.uuid5(_POINT_NAMESPACE, dedupe_key(text)))


# ---------------------------------------------------------------------------------------------------------
# Near-duplicate grouping
#
# Every prompt is a sequence of word tokens (dedupe_key(...).split()). Three kinds of 64-bit keys are hashed:
#   full   F(d)      = hash of the whole sequence                      (exact duplicates share it)
#   delete D_i(d)    = hash of the sequence without token i            (equals F of a prompt one word shorter)
#   subst  S_i(d)    = hash of the sequence with a hole at position i  (shared by one-word substitutions)
# A polynomial hash h(t) = sum t_k * B^k (mod 2^64, B odd so it is invertible) gives every D_i and S_i in O(1)
# from prefix sums, so building all keys is O(total tokens) and fully vectorized.
#
# Grouping is greedy star clustering in input order, not union-find: the first unassigned prompt becomes a
# representative and absorbs its unassigned one-word neighbours. Every member is therefore within one word of
# its representative, and templated prompts cannot chain ("snowball") into a giant group. Each key bucket is
# a clique (all members are mutual neighbours), so a bucket is exhausted by its first visit and skipped after
# that: the total work is linear in the number of keys.
# ---------------------------------------------------------------------------------------------------------

_U64 = np.uint64
_BASE = 0x9E3779B97F4A7C15  # odd, so it has an inverse modulo 2^64
_BASE_INV = pow(_BASE, -1, 1 << 64)
_SUB_SALT = 0xD6E8FEB86659FD93
_SEED = 20240611

U64Array = npt.NDArray[np.uint64]
IntArray = npt.NDArray[np.int64]


def _tokenize(texts: Sequence[str]) -> tuple[IntArray, IntArray]:
    """Map each text to word-token ids; return (flat token ids, lengths)."""
    vocab: dict[str, int] = {}
    flat = array("q")
    lengths = array("q")
    for text in texts:
        tokens = dedupe_key(text).split()
        flat.extend([vocab.setdefault(tok, len(vocab)) for tok in tokens])
        lengths.append(len(tokens))
    return np.frombuffer(flat, dtype=np.int64), np.frombuffer(lengths, dtype=np.int64)


def _hash_keys(
    tok: IntArray, lens: IntArray, min_words: int
) -> tuple[U64Array, U64Array, IntArray, U64Array, IntArray]:
    """Return (full keys per doc, delete keys, their doc ids, substitution keys, their doc ids)."""
    n_docs = len(lens)
    rng = np.random.default_rng(_SEED)
    vocab_size = int(tok.max()) + 1 if tok.size else 1
    max_len = int(lens.max()) + 2 if n_docs else 2
    tok_val = rng.integers(0, 2**63, size=vocab_size, dtype=np.int64).astype(_U64) * _U64(2) + _U64(1)
    len_val = rng.integers(0, 2**63, size=max_len, dtype=np.int64).astype(_U64)
    pos_val = rng.integers(0, 2**63, size=max_len, dtype=np.int64).astype(_U64)
    powers = np.empty(max_len, dtype=_U64)
    powers[0] = 1
    with np.errstate(over="ignore"):
        powers[1:] = _U64(_BASE)
        powers = np.cumprod(powers, dtype=_U64)
        doc = np.repeat(np.arange(n_docs, dtype=np.int64), lens)
        starts = np.zeros(n_docs, dtype=np.int64)
        np.cumsum(lens[:-1], out=starts[1:])
        pos = np.arange(tok.size, dtype=np.int64) - starts[doc]
        terms = tok_val[tok] * powers[pos]
        csum = np.cumsum(terms, dtype=_U64)
        before_doc = np.concatenate([np.zeros(1, dtype=_U64), csum])[starts]  # sum of earlier docs
        full_wo_len = np.concatenate([np.zeros(1, dtype=_U64), csum])[starts + lens] - before_doc
        full = full_wo_len + len_val[lens]
        prefix = (csum - terms) - before_doc[doc]  # sum over positions < k within the doc
        suffix = full_wo_len[doc] - prefix - terms  # sum over positions > k within the doc
        del terms, csum
        doc_len = lens[doc]
        dele = prefix + suffix * _U64(_BASE_INV) + len_val[doc_len - 1]
        sub = ((prefix + suffix) ^ _U64(_SUB_SALT)) + pos_val[pos] + len_val[doc_len]
    keep_tok = doc_len >= min_words
    return full, dele[keep_tok], doc[keep_tok], sub[keep_tok], doc[keep_tok]


def _shared(keys: U64Array) -> npt.NDArray[np.bool_]:
    """Mask of the entries whose key occurs more than once."""
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    return np.asarray(counts[inverse] > 1)


def _buckets(keys: U64Array, docs: IntArray, min_members: int) -> dict[int, IntArray]:
    """Group doc ids by key, keeping keys with at least min_members distinct docs."""
    if keys.size == 0:
        return {}
    order = np.lexsort((docs, keys))
    k, d = keys[order], docs[order]
    first = np.ones(k.size, dtype=bool)
    first[1:] = k[1:] != k[:-1]
    new_doc = first.copy()
    new_doc[1:] |= d[1:] != d[:-1]
    k, d, first = k[new_doc], d[new_doc], first[new_doc]
    starts = np.flatnonzero(first)
    sizes = np.diff(np.append(starts, k.size))
    out: dict[int, IntArray] = {}
    for s, n in zip(starts[sizes >= min_members].tolist(), sizes[sizes >= min_members].tolist(), strict=True):
        out[int(k[s])] = d[s : s + n]
    return out


def _group_labels(texts: Sequence[str], *, min_words: int = 4) -> list[int]:
    """Return, for every text, the index of its group's representative (itself when alone)."""
    n_docs = len(texts)
    if n_docs == 0:
        return []
    flat, lengths = _tokenize(texts)
    full, dele, dele_doc, sub, sub_doc = _hash_keys(flat, lengths, min_words)
    eligible = lengths >= min_words
    doc_ids = np.flatnonzero(eligible)
    full_keys = full[doc_ids]
    in_full = np.isin(dele, full_keys)
    dele, dele_doc = dele[in_full], dele_doc[in_full]  # only deletions that equal some other prompt
    useful = _shared(full_keys) | np.isin(full_keys, dele)  # exact duplicates or a longer neighbour
    full_b = _buckets(full_keys[useful], doc_ids[useful], 1)
    dele_b = _buckets(dele, dele_doc, 1)  # longer docs, keyed by the shorter doc's key
    sub_b = _buckets(sub, sub_doc, 2)
    # Per doc, the keys that can lead to neighbours.
    dele_keys_of: dict[int, list[int]] = {}
    for key, doc in zip(dele.tolist(), dele_doc.tolist(), strict=True):
        dele_keys_of.setdefault(doc, []).append(key)
    sub_keys_of: dict[int, list[int]] = {}
    shared = np.isin(sub, np.fromiter(sub_b, dtype=_U64, count=len(sub_b)))
    for key, doc in zip(sub[shared].tolist(), sub_doc[shared].tolist(), strict=True):
        sub_keys_of.setdefault(doc, []).append(key)

    label = list(range(n_docs))
    assigned = [False] * n_docs
    full_list = full.tolist()
    eligible_list = eligible.tolist()
    for rep in range(n_docs):
        if assigned[rep]:
            continue
        assigned[rep] = True
        if not eligible_list[rep]:
            continue
        pending: list[IntArray] = []
        fkey = full_list[rep]
        for table in (full_b, dele_b):
            bucket = table.pop(fkey, None)  # exact duplicates, then prompts one word longer
            if bucket is not None:
                pending.append(bucket)
        for key in dele_keys_of.get(rep, ()):  # prompts one word shorter
            bucket = full_b.pop(key, None)
            if bucket is not None:
                pending.append(bucket)
        for key in sub_keys_of.get(rep, ()):  # one-word substitutions
            bucket = sub_b.pop(key, None)
            if bucket is not None:
                pending.append(bucket)
        for bucket in pending:
            for member in bucket.tolist():
                if not assigned[member]:
                    assigned[member] = True
                    label[member] = rep
    return label


def collapse_near_duplicates(texts: Sequence[str], *, min_words: int = 4) -> list[tuple[int, int]]:
    """Group prompts one word apart; return (representative index, group size) in input order."""
    labels = _group_labels(texts, min_words=min_words)
    sizes: dict[int, int] = {}
    for rep in labels:
        sizes[rep] = sizes.get(rep, 0) + 1
    groups = sorted(sizes.items())
    logger.info(
        "near-duplicates: %d prompts -> %d groups (largest %d)",
        len(texts),
        len(groups),
        max(sizes.values(), default=0),
    )
    return groups
