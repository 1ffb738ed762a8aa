"""A user's tagger's predictions as the NER task's stored per-token predictions (``[mining]
predictions = "external"``): one JSONL row per text in ``landing/predictions/``, either

- ``{"example_id", "tokens": [...], "probs": [[...], ...]}``: the tagger's own tokens (each a string,
  found in the text in order, or ``[start, end]`` character offsets) and per token a probability
  distribution over ``"tags"`` (default ``["O", type1, ..., typeK]`` in the dataset's type order;
  BIO tags such as ``"B-PER"`` and ``"I-PER"`` are summed into their type, as the engine tags IO,
  :mod:`data_engine.tasks.tokens`). The tagger's tokens are kept: the given spans are turned into
  tags on them, so no probability is moved between tokenisations. Or
- ``{"example_id", "spans": [{"start", "end", "label", "score"}]}``: the tagger's entities with
  their scores, character offsets. Spans carry less than token probabilities: on the engine's
  tokens (:func:`data_engine.tasks.tokens.offsets`) a token inside a span of type k has
  probability ``score`` for k and ``1 - score`` for outside; a token inside no span is outside with
  probability 1 (the tagger's call, with no doubt it told). Where two spans overlap, the higher
  score is the token's.

Texts with more than :data:`~data_engine.tasks.tokens.MAX_TOKENS` tokens keep their first ones, as
the engine's own predictions do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.tasks import tokens as tk
from data_engine.tasks.setlabels import jsonl_objects

JSONL = (".jsonl", ".ndjson")
# A token's probabilities sum to 1 within this (floats written with few decimals).
SUM_TOLERANCE = 1e-3


class BadTaggerRow(EngineError):
    """A row of a tagger's predictions file that cannot be used; the message names file, line and key."""


def _int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _tag_columns(tags: object, types: Sequence[str], where: str) -> np.ndarray:
    """For each of the row's tags, its IO tag index (0 outside, k + 1 type k)."""
    if tags is None:
        return np.arange(len(types) + 1)
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise BadTaggerRow(f"{where}, key 'tags': must be a list of tag names (\"O\", a type, or B-/I-type)")
    index = {t: k + 1 for k, t in enumerate(types)}
    out = []
    for t in tags:
        name = t[2:] if t[:2] in ("B-", "I-") else t
        if t != "O" and name not in index:
            raise BadTaggerRow(f"{where}, key 'tags': {t!r} is not O or one of the types ({', '.join(types)})")
        out.append(0 if t == "O" else index[name])
    return np.asarray(out)


def _token_offsets(tokens: list, text: str, where: str) -> np.ndarray:
    """The tagger's tokens as (m, 2) character offsets in ``text``: strings are found in order,
    pairs taken as given (increasing, inside the text, not empty)."""
    out, pos = [], 0
    for j, tok in enumerate(tokens):
        if isinstance(tok, str):
            start = text.find(tok, pos) if tok else -1
            if start < 0:
                raise BadTaggerRow(f"{where}, key 'tokens'[{j}]: {tok[:40]!r} is not in the text after character {pos}")
            end = start + len(tok)
        elif isinstance(tok, list) and len(tok) == 2 and all(_int(v) for v in tok):
            start, end = tok
            if not (pos <= start < end <= len(text)):
                raise BadTaggerRow(f"{where}, key 'tokens'[{j}]: [{start}, {end}] is not a non-empty range after "
                                   f"character {pos} inside the text (0-{len(text)})")
        else:
            raise BadTaggerRow(f"{where}, key 'tokens'[{j}]: a token is its text or [start, end] character offsets")
        out.append((start, end))
        pos = end
    return np.asarray(out, dtype=np.int64).reshape(-1, 2)


def _token_probs(row: dict, text: str, types: Sequence[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (m, 2), IO probabilities (m, 1 + K)) of a ``tokens`` / ``probs`` row."""
    tokens, probs = row.get("tokens"), row.get("probs")
    if not isinstance(tokens, list):
        raise BadTaggerRow(f"{where}, key 'tokens': must be a list of tokens")
    columns = _tag_columns(row.get("tags"), types, where)
    if not isinstance(probs, list) or len(probs) != len(tokens):
        raise BadTaggerRow(f"{where}, key 'probs': must hold one list per token ({len(tokens)})")
    if not tokens and len(words := tk.offsets(text)):
        # The given spans are read on the tagger's tokens: none would leave every span unchecked.
        raise BadTaggerRow(f"{where}, key 'tokens': empty, but the text has {len(words)} words; give the tagger's "
                           "tokens, or key 'spans' as [] when it found no entity")
    off = _token_offsets(tokens, text, where)
    out = np.zeros((len(tokens), len(types) + 1))
    for j, p in enumerate(probs):
        if not isinstance(p, list) or len(p) != len(columns) or not all(_number(v) and v >= 0 for v in p):
            raise BadTaggerRow(f"{where}, key 'probs'[{j}]: must be {len(columns)} probabilities (one per tag)")
        if abs(sum(p) - 1.0) > SUM_TOLERANCE:
            raise BadTaggerRow(f"{where}, key 'probs'[{j}]: probabilities sum to {sum(p):.4f}, not 1")
        np.add.at(out[j], columns, p)
    return off, out


def _span_probs(row: dict, text: str, types: Sequence[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """(offsets (m, 2), IO probabilities (m, 1 + K)) of a scored ``spans`` row on the engine's tokens."""
    spans = row.get("spans")
    if not isinstance(spans, list):
        raise BadTaggerRow(f"{where}, key 'spans': must be a list (write [] when the tagger found nothing)")
    index = {t: k + 1 for k, t in enumerate(types)}
    checked = []
    for j, s in enumerate(spans):
        bad = f"{where}, key 'spans'[{j}]"
        if not isinstance(s, dict):
            raise BadTaggerRow(f"{bad}: must be an object with start, end, label and score")
        start, end, label, score = s.get("start"), s.get("end"), s.get("label"), s.get("score")
        if not (_int(start) and _int(end) and 0 <= start < end <= len(text)):
            raise BadTaggerRow(f"{bad}: start and end must be character offsets inside the text (0-{len(text)}), "
                               "start before end")
        if label not in index:
            raise BadTaggerRow(f"{bad}: label {label!r} is not one of the types ({', '.join(types)})")
        if not (_number(score) and 0.0 <= score <= 1.0):
            raise BadTaggerRow(f"{bad}: 'score' must be a number in [0, 1]")
        checked.append((float(score), start, end, index[label]))
    off = tk.offsets(text)
    out = np.zeros((len(off), len(types) + 1))
    out[:, 0] = 1.0
    for score, start, end, k in sorted(checked):  # a higher score written last wins an overlap
        inside = (off[:, 0] < end) & (off[:, 1] > start)
        out[inside] = 0.0
        out[inside, 0], out[inside, k] = 1.0 - score, score
    return off, out


def row_probs(row: Mapping[str, object], text: str | None, types: Sequence[str],
              where: str) -> tuple[np.ndarray, np.ndarray]:
    """One text's predictions, a ``spans`` row or a ``tokens`` / ``probs`` (/ ``tags``) row (module
    docstring), as (token offsets (m, 2), IO probabilities (m, 1 + K) over ``["O", *types]``); no
    tokens when ``text`` is None (an id mining does not know). Raises :class:`BadTaggerRow` starting
    with ``where`` (file and row): neither or both kinds, or a bad value (:func:`external_token_rows`)."""
    if ("spans" in row) == ("tokens" in row):
        raise BadTaggerRow(f"{where}: give either key 'spans' (scored entities) or keys 'tokens' and 'probs'")
    if text is None:
        return np.zeros((0, 2), dtype=np.int64), np.zeros((0, len(types) + 1))
    return (_span_probs if "spans" in row else _token_probs)(dict(row), text, types, where)


def external_token_rows(path: Path, types: Sequence[str], texts: Mapping[str, str]) -> pd.DataFrame | None:
    """The tagger's predictions in the JSONL file ``path`` (module docstring) as stored per-token
    prediction rows (columns :func:`~data_engine.tasks.tokens.slot_columns`) indexed by ``example_id``;
    None for another kind of file (CSV or Parquet hold the slot columns themselves).

    ``texts``: example id -> its text (the training and unlabeled examples); a row of another id is
    kept without tokens (mining reports it as unused). Raises :class:`BadTaggerRow` naming file,
    line and key: no ``example_id``, an id given twice, neither or both of ``spans`` and
    ``tokens``, a token not in the text, probabilities that are not a distribution over the tags, a
    span outside the text, of an unknown type or without a score in [0, 1]."""
    if not path.name.lower().endswith(JSONL):
        return None
    types = [str(t) for t in types]
    ids, offs, probs, seen = [], [], [], {}
    for n, row in jsonl_objects(path, BadTaggerRow):
        where = f"{path.name} line {n}"
        raw = row.get("example_id")
        if not (isinstance(raw, str) and raw.strip()) and not _int(raw):
            raise BadTaggerRow(f"{where}: key 'example_id' must name the text")
        example_id = str(raw)
        if example_id in seen:
            raise BadTaggerRow(f"{where}: example_id {example_id!r} was given on line {seen[example_id]}")
        seen[example_id] = n
        text = texts.get(example_id)
        off, p = row_probs(row, text, types, where)
        ids.append(example_id)
        offs.append(off)
        probs.append(p)
    return pd.DataFrame(tk.pack(offs, probs, len(types)), columns=tk.slot_columns(types),
                        index=pd.Index(ids, name="example_id", dtype=object))
