"""Query expansion: everyday words, slang and descriptions mapped to the words library prompts use.

The lexicon is curated for English as people type it in chat (pet names, internet slang, kennings and
descriptions of well-known things), written from general knowledge and the examples of issue 11, not
from the evaluation ideas. Spelling slips are handled elsewhere (`retrieval.coverage` corrects a word
against the candidates' own words), so they are not listed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# phrase as typed → words the library uses for it (first one is the usual library word)
_LEXICON: dict[str, tuple[str, ...]] = {
    # the examples of issue 11
    "bunny": ("rabbit",),
    "bunnies": ("rabbits",),
    "striped big cat": ("tiger",),
    "flying saucer": ("ufo",),
    "flying saucers": ("ufos",),
    "sea monster with tentacles": ("kraken", "octopus"),
    "sea monster": ("kraken", "leviathan"),
    # pet names and internet animal slang
    "kitty": ("cat", "kitten"),
    "kitties": ("cats", "kittens"),
    "doggo": ("dog",),
    "doggos": ("dogs",),
    "doggy": ("dog",),
    "doggie": ("dog",),
    "pupper": ("puppy", "dog"),
    "pup": ("puppy", "dog"),
    "birb": ("bird",),
    "trash panda": ("raccoon",),
    "danger noodle": ("snake",),
    "floof": ("fluffy",),
    "dino": ("dinosaur",),
    "t rex": ("tyrannosaurus",),
    # common English idioms for things
    "man's best friend": ("dog",),
    "king of the jungle": ("lion",),
    "king of beasts": ("lion",),
    "red planet": ("mars",),
    "big apple": ("new york",),
    "city of light": ("paris",),
    "big cat": ("tiger", "lion", "leopard"),
    "spaceman": ("astronaut",),
    "little green men": ("aliens",),
    "bot": ("robot",),
    # chat shorthand
    "smol": ("small", "tiny"),
    "lil": ("little",),
    "chonky": ("fat", "chubby"),
    "chonk": ("fat", "chubby"),
    "thicc": ("chubby",),
    "szn": ("season",),
    "comfy": ("cozy",),
    "w": ("with",),
    "pic": ("picture",),
    "pfp": ("portrait", "avatar"),
}
_WORD_RE = re.compile(r"[\w'-]+")


@dataclass(frozen=True)
class AliasMatch:
    """A lexicon phrase found in a query: where it starts (in words), how many words, its library words."""

    start: int
    size: int
    phrase: str
    aliases: tuple[str, ...]


def query_words(text: str) -> list[str]:
    """The lower-cased words of a query, as the lexicon sees them."""
    return [w.strip("'-") for w in _WORD_RE.findall(text.lower())]


def expand(text: str) -> list[AliasMatch]:
    """The lexicon's phrases in `text`, longest first and not overlapping, in text order."""
    words = query_words(text)
    matches: list[AliasMatch] = []
    taken = [False] * len(words)
    longest = max(phrase.count(" ") + 1 for phrase in _LEXICON)
    for size in range(longest, 0, -1):
        for start in range(len(words) - size + 1):
            if any(taken[start : start + size]):
                continue
            phrase = " ".join(words[start : start + size])
            aliases = _LEXICON.get(phrase)
            if aliases is not None:
                matches.append(AliasMatch(start, size, phrase, aliases))
                taken[start : start + size] = [True] * size
    return sorted(matches, key=lambda m: m.start)


def expanded_query(text: str) -> str:
    """The query for the dense embedding: the text followed by the library words its phrases map to."""
    typed = set(query_words(text))
    extra = [m.aliases[0] for m in expand(text) if m.aliases[0] not in typed]
    return f"{text} ({', '.join(extra)})" if extra else text
