"""Characters ⇄ tokens for named entities: the one place text is cut into tokens and spans are
moved between character offsets and per-token tags.

Tokenisation is the regular expression :data:`TOKEN_PATTERN`: a run of word characters (letters,
digits, underscore, Unicode-aware) or one other non-space character (punctuation, a symbol). Each
token keeps its character offsets ``[start, end)`` into the text, so a token tag turns back into a
character span exactly.

Tags use the IO scheme over ``K`` entity types: tag 0 is "outside", tag ``k + 1`` is "inside an
entity of type ``types[k]``". A span tags every token it overlaps; a run of tokens of one tag is
one span from the first token's start to the last token's end. IO cannot separate two adjacent
entities of one type with nothing between them (they read back as one span); BIO would, at the
price of 2K + 1 tags the small per-token model learns from few examples (the design choice of
cleanlab's token-classification tutorial, which scores per token over the entity classes).

Stored predictions have a fixed width per text (``predictions.probs``): :data:`MAX_TOKENS` token
slots of ``3 + K`` numbers each, ``[start, end, p_O, p_type1 ... p_typeK]``; an unused slot is
``[-1, -1, 0, ...]``. A text with more tokens keeps its first :data:`MAX_TOKENS` in the stored
predictions (mining and the review's pre-marked spans see those; entities further on are neither
scored nor suggested).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from data_engine.tasks.spans import Span

# A word (letters, digits, underscore) or a single other non-space character.
TOKEN_PATTERN = re.compile(r"\w+|[^\w\s]")
# Token slots per text in the stored predictions (see the module docstring).
MAX_TOKENS = 128
SLOT_META = 2  # start, end


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """The tokens of ``text`` as ``(token, start, end)``, character offsets ``[start, end)``."""
    return [(m.group(), m.start(), m.end()) for m in TOKEN_PATTERN.finditer(text)]


def offsets(text: str) -> np.ndarray:
    """Token offsets of ``text``, shape (m, 2) int64 (start, end)."""
    toks = tokenize(text)
    return np.array([(s, e) for _, s, e in toks], dtype=np.int64).reshape(-1, 2)


def spans_to_tags(spans: Sequence[Span], token_offsets: np.ndarray, types: Sequence[str]) -> np.ndarray:
    """IO tags (m,) int64 of tokens at ``token_offsets`` (m, 2) for ``spans``: 0 outside, ``k + 1``
    inside a span of ``types[k]``. A span of a type not in ``types`` tags nothing; a token that two
    spans overlap takes the later span's type (valid span sets do not overlap)."""
    index = {t: k + 1 for k, t in enumerate(types)}
    tags = np.zeros(len(token_offsets), dtype=np.int64)
    if len(token_offsets) == 0:
        return tags
    starts, ends = token_offsets[:, 0], token_offsets[:, 1]
    for s in spans:
        k = index.get(s.label)
        if k is None:
            continue
        tags[(starts < s.end) & (ends > s.start)] = k
    return tags


def tags_to_spans(tags: Sequence[int], token_offsets: np.ndarray, types: Sequence[str]) -> list[Span]:
    """The spans of IO ``tags`` (m,) over tokens at ``token_offsets`` (m, 2): each maximal run of one
    non-zero tag is one span from its first token's start to its last token's end."""
    out: list[Span] = []
    run_tag, run_start, run_end = 0, 0, 0
    for tag, (start, end) in zip((int(t) for t in tags), token_offsets.tolist()):
        if tag != run_tag:
            if run_tag:
                out.append(Span(run_start, run_end, types[run_tag - 1]))
            run_tag, run_start = tag, start
        run_end = end
    if run_tag:
        out.append(Span(run_start, run_end, types[run_tag - 1]))
    return out


def slot_width(n_types: int) -> int:
    """Numbers per token slot: start, end and 1 + K tag probabilities."""
    return SLOT_META + 1 + n_types


def pack(token_offsets: Sequence[np.ndarray], token_probs: Sequence[np.ndarray], n_types: int) -> np.ndarray:
    """Per-text token offsets (m_i, 2) and tag probabilities (m_i, 1 + K) as the stored fixed-width
    predictions, shape (n, MAX_TOKENS * (3 + K)); tokens past MAX_TOKENS are left out."""
    width = slot_width(n_types)
    out = np.zeros((len(token_offsets), MAX_TOKENS, width), dtype=float)
    out[:, :, :SLOT_META] = -1.0
    for i, (off, probs) in enumerate(zip(token_offsets, token_probs)):
        m = min(len(off), MAX_TOKENS)
        out[i, :m, :SLOT_META] = off[:m]
        out[i, :m, SLOT_META:] = probs[:m]
    return out.reshape(len(token_offsets), MAX_TOKENS * width)


def unpack(pred_row: np.ndarray, n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """One stored prediction row (MAX_TOKENS * (3 + K),) as token offsets (m, 2) int64 and tag
    probabilities (m, 1 + K); the unused slots dropped. Raises ``ValueError`` on a wrong width."""
    width = slot_width(n_types)
    row = np.asarray(pred_row, dtype=float)
    if row.shape != (MAX_TOKENS * width,):
        raise ValueError(f"an NER prediction row holds {MAX_TOKENS * width} numbers for {n_types} types, got {row.shape}")
    slots = row.reshape(MAX_TOKENS, width)
    used = slots[:, 0] >= 0
    return slots[used, :SLOT_META].astype(np.int64), slots[used, SLOT_META:]


def slot_problem(pred: np.ndarray) -> tuple[int, None, str] | None:
    """The first row (and why) of packed token predictions ``pred`` (n, MAX_TOKENS * slot width) whose
    used token slot's tag probabilities are negative or do not sum to 1 (within 1e-3); None if none."""
    k = pred.shape[1] // MAX_TOKENS - slot_width(0)
    slots = pred.reshape(len(pred), MAX_TOKENS, -1)
    used = slots[:, :, 0] >= 0
    sums = slots[:, :, SLOT_META:].sum(axis=2)
    bad = used & ((np.abs(sums - 1) > 1e-3) | (slots[:, :, SLOT_META:] < 0).any(axis=2))
    if bad.any():
        r, t = np.argwhere(bad)[0]
        return int(r), None, f"token {int(t)}'s {k + 1} tag probabilities do not sum to 1"
    return None


def slot_columns(types: Sequence[str]) -> list[str]:
    """Names of the stored prediction's numbers: ``t<i>_start``, ``t<i>_end``, ``t<i>_O``, ``t<i>_<type>``."""
    tags = ["O", *types]
    return [f"t{i}_{name}" for i in range(MAX_TOKENS) for name in ("start", "end", *tags)]
