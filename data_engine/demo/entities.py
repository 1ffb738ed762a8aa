"""A generated named-entity set with injected span errors, for the demo, the tests and ``bench detect``.

Sentences are filled from templates with person, place and organisation names drawn from small
lists (seeded), so the true spans are known exactly. :func:`inject_errors` then corrupts a share of
the texts' labels in the three ways annotators err on spans: an entity dropped, an entity given the
wrong type, an entity's boundary shifted by a word (extended over the next word or cut short) or,
when asked, a slip of a few characters that leaves the boundary inside a word ("Pari" of "Paris").
The corrupted texts are the truth a label check should find.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from data_engine.tasks.spans import Span, canonical

TYPES = ("LOC", "ORG", "PER")
_NAMES = {
    "PER": ["Alice Martin", "Bob Stone", "Chen Wei", "Dana Kovacs", "Elif Yilmaz", "Farid Haddad", "Grace Hopper",
            "Hugo Silva", "Ines Moreau", "Jonas Berg", "Kenji Sato", "Lena Fischer", "Maya Patel", "Nora Quinn"],
    "LOC": ["Paris", "Lagos", "Osaka", "Lima", "Oslo", "Nairobi", "Boston", "Kraków", "Seville", "Hanoi",
            "New Delhi", "Cape Town", "Buenos Aires", "Vancouver"],
    "ORG": ["Acme Corp", "Globex", "Initech", "Umbrella Health", "Stark Industries", "Wayne Foundation", "Hooli",
            "Vandelay Imports", "Soylent Group", "Tyrell Systems", "Northwind Traders", "Blue Sun"],
}
_TEMPLATES = [
    "{PER} joined {ORG} in {LOC} last spring.",
    "{PER} flew to {LOC} to meet the board of {ORG}.",
    "The office of {ORG} in {LOC} is led by {PER}.",
    "{ORG} opened a new plant near {LOC}, said {PER}.",
    "Yesterday {PER} and {PER} visited {LOC}.",
    "{PER} left {ORG} after ten years.",
    "Shares of {ORG} rose after the report from {LOC}.",
    "According to {PER}, {LOC} will host the summit.",
    "{LOC} and {LOC} signed a trade deal on Monday.",
    "The weather in {LOC} was mild this week.",
    "{PER} wrote a letter to {PER} about {ORG}.",
    "Nothing much happened at the market today.",
]


@dataclass(frozen=True)
class NerExample:
    """One text with its true span set and the span set as given (corrupted or not)."""

    text: str
    true_spans: tuple[Span, ...]
    given_spans: tuple[Span, ...]
    error: str  # '' for a clean label, else 'dropped', 'wrong_type', 'shifted' or 'shifted_in_word'

    @property
    def true_label(self) -> str:
        """The true span set in stored spelling."""
        return canonical(self.true_spans)

    @property
    def given_label(self) -> str:
        """The given span set in stored spelling."""
        return canonical(self.given_spans)


def make_texts(n: int, *, seed: int = 0) -> list[tuple[str, tuple[Span, ...]]]:
    """``n`` generated texts with their true spans (character offsets, end exclusive)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        template = rng.choice(_TEMPLATES)
        text, spans = "", []
        for piece in template.replace("}", "{").split("{"):
            if piece in _NAMES:
                name = rng.choice(_NAMES[piece])
                spans.append(Span(len(text), len(text) + len(name), piece))
                text += name
            else:
                text += piece
        out.append((text, tuple(spans)))
    return out


def _shift(text: str, s: Span, rng: random.Random) -> Span | None:
    """``s`` extended over the next word, or cut to its first word when it has several; None if neither is possible."""
    words = s.start + text[s.start:s.end].find(" ")
    if words > s.start and rng.random() < 0.5:
        return Span(s.start, words, s.label)
    rest = text[s.end:]
    nxt = len(rest) - len(rest.lstrip(" "))
    if 0 < nxt and rest[nxt:nxt + 1].isalpha():
        end = s.end + nxt
        while end < len(text) and text[end].isalpha():
            end += 1
        return Span(s.start, end, s.label)
    return Span(s.start, words, s.label) if words > s.start else None


def _slip(text: str, s: Span, rng: random.Random) -> Span | None:
    """``s`` with its end 1-2 characters short of its last word's end, or its start 1-2 characters
    into its first word (a drag that stopped inside a word); None if its words are too short."""
    first = text[s.start:s.end].split(" ")[0]
    last = text[s.start:s.end].split(" ")[-1]
    cut = rng.randint(1, 2)
    if rng.random() < 0.5 and len(last) > cut + 1:
        return Span(s.start, s.end - cut, s.label)
    if len(first) > cut + 1:
        return Span(s.start + cut, s.end, s.label)
    return None


def inject_errors(texts: list[tuple[str, tuple[Span, ...]]], *, rate: float = 0.1, seed: int = 0,
                  inside_words: float = 0.0, types: tuple[str, ...] = TYPES) -> list[NerExample]:
    """The texts with about ``rate`` of those holding an entity corrupted: one entity dropped,
    retyped or shifted (a third each, seeded); the others given as true. ``inside_words``: the share
    of the shifts that are a slip of 1-2 characters leaving a boundary inside a word (error
    ``shifted_in_word``); 0 draws no extra random numbers, so the default sets stay as they were.
    ``types``: the entity types a wrong type is drawn from."""
    rng = random.Random(seed)
    out = []
    for text, spans in texts:
        given, error = list(spans), ""
        if spans and rng.random() < rate:
            i = rng.randrange(len(spans))
            kind = rng.choice(("dropped", "wrong_type", "shifted"))
            if kind == "dropped":
                del given[i]
            elif kind == "wrong_type":
                given[i] = Span(spans[i].start, spans[i].end, rng.choice([t for t in types if t != spans[i].label]))
            elif inside_words and rng.random() < inside_words and (slip := _slip(text, spans[i], rng)):
                kind, given[i] = "shifted_in_word", slip
            else:
                moved = _shift(text, spans[i], rng)
                overlaps = moved is not None and any(
                    j != i and o.start < moved.end and moved.start < o.end for j, o in enumerate(spans))
                if moved is None or overlaps:
                    kind = "dropped"
                    del given[i]
                else:
                    given[i] = moved
            error = kind
        out.append(NerExample(text, tuple(sorted(spans)), tuple(sorted(given)), error))
    return out
