"""The user's trainer for spans (``[dataset] task = "ner"``): ``PRED.parquet`` holds ``example_id``
and, per text, what a line of the external predictions file holds (:mod:`data_engine.tasks.span_external`):

- ``tokens`` and ``probs`` (and optionally ``tags``): the tagger's own tokens (each its text, found
  in the text in order, or ``[start, end]`` character offsets) and per token a probability
  distribution over ``tags`` (default ``["O", *classes]`` in the manifest's order; ``B-``/``I-`` tags
  are summed into their type); or
- ``spans``: ``[{"start", "end", "label", "score"}]`` character offsets with a score in [0, 1].

Each cell is a Parquet list (of lists, of structs) or its JSON text. A file has one kind of row:
``spans`` or ``tokens``/``probs`` columns, not both. ``TRAIN.parquet``'s ``label`` is the span set in
force as stored (JSON text, ``[{"start":0,"end":5,"label":"PER"}]``; ``[]``: no entities).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.tasks import tokens as tk
from data_engine.tasks.ner_model import text_column_of
from data_engine.tasks.set_trainer import CommandSetModel, cell
from data_engine.tasks.span_external import row_probs
from data_engine.tasks.spans import decode, spans_of
from data_engine.trainers.command import read_prediction_file

# The columns a span trainer's PRED.parquet may hold besides example_id.
SPAN_COLUMNS = ("spans", "tokens", "probs", "tags")


def read_span_predictions(path: Path, ids: Sequence[str], texts: Sequence[str], types: Sequence[str], *,
                          what: str = "trainer `predict`") -> np.ndarray:
    """The trainer's predictions of the texts ``texts`` (one per id of ``ids``) as packed per-token
    rows (len(ids), MAX_TOKENS * (3 + K)) in ``types`` order. Raises :class:`EngineError` naming the
    file, the id and the column: those of :func:`~data_engine.trainers.command.read_prediction_file`,
    neither or both of ``spans`` and ``tokens``/``probs``, an empty cell, a token not in the text,
    probabilities of the wrong shape, not finite or not summing to 1, a span outside the text, of an
    unknown type or without a score in [0, 1] (:func:`~data_engine.tasks.span_external.row_probs`)."""
    frame = read_prediction_file(path, ids, what=what)
    kinds = [c for c in ("spans", "tokens") if c in frame.columns]
    if len(kinds) != 1 or ("tokens" in kinds and "probs" not in frame.columns):
        raise EngineError(f"{what}: {path.name} must have a 'spans' column or 'tokens' and 'probs' columns, "
                          f"not both (got {list(frame.columns)})")
    columns = [c for c in SPAN_COLUMNS if c in frame.columns and (c != "tags" or "tokens" in kinds)]
    types = [str(t) for t in types]
    offs, probs = [], []
    for example_id, text, (_, row) in zip(ids, texts, frame[columns].iterrows()):
        where = f"{what}: {path.name}: row example_id={example_id!r}"
        values = {c: cell(row[c], f"{where}, column {c!r}") for c in columns
                  if c != "tags" or row[c] is not None}
        off, p = row_probs(values, str(text), types, where)
        offs.append(off)
        probs.append(p)
    return tk.pack(offs, probs, len(types))


class CommandSpans(CommandSetModel):
    """A tagger whose ``fit`` and ``predict_proba`` run the user's trainer (module docstring); the
    same interface as the built-in :class:`~data_engine.tasks.ner_model.TokenTagger` (``types_``,
    ``token_probs``). ``text_column``: the input column holding the texts (default: the only text column)."""

    task = "ner"

    def __init__(self, command: Sequence[str] = (), timeout_s: float = 3600.0, manifest: dict | None = None,
                 out_of_fold: str = "engine", tags: tuple[str, ...] | None = None,
                 text_column: str | None = None) -> None:
        super().__init__(command, timeout_s, manifest, out_of_fold, tags)
        self.text_column = text_column

    def stored_labels(self, y: np.ndarray, types: Sequence[str]) -> list[str]:
        """The stored span sets of the encoded rows ``y`` (n, 1 + 3 * MAX_SPANS)."""
        return decode(y, list(types))

    def label_types(self, labels: Sequence[str]) -> list[str]:
        """The entity types the span sets name, sorted."""
        return sorted({s.label for label in labels for s in spans_of(label)})

    def read_answer(self, path: Path, ids: Sequence[str], inputs: pd.DataFrame, *,
                    what: str = "trainer `predict`") -> np.ndarray:
        """Packed per-token rows (len(ids), width) from ``path``, the texts from ``inputs``' text column
        (:func:`read_span_predictions`)."""
        texts = text_column_of(inputs.drop(columns=["example_id", "label", "fold"], errors="ignore"),
                               self.text_column).astype(str).tolist()
        return read_span_predictions(path, ids, texts, self.types_, what=what)

    def decide(self, answer: np.ndarray) -> np.ndarray:
        """Each text's span set of its tokens' most likely tags (stored spelling), shape (n,)."""
        from data_engine.tasks.spans import canonical

        k = len(self.types_)
        out = []
        for row in np.asarray(answer):
            off, p = tk.unpack(row, k)
            out.append(canonical(tk.tags_to_spans(p.argmax(axis=1), off, self.types_)))
        return np.asarray(out, dtype=object)

    def token_probs(self, X: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per text of ``X``: the trainer's token offsets (m, 2) and IO probabilities (m, 1 + K)."""
        return [tk.unpack(row, len(self.types_)) for row in self.predict_proba(X)]


__all__ = ["CommandSpans", "read_span_predictions"]
