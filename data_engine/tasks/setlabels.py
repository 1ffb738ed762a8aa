"""What several reviewers' answers mean when a label is a set (tags, entity spans, boxes): the discard
answer's majority and the Jaccard agreement, shared by the set-valued tasks; and reading a set
label's value (a list or its JSON text), and the rows of a JSONL file of such labels."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


class ExactMatchShare:
    """The budget split's figure for a task whose label is a set (tags, entity spans, boxes): exact match.

    A mixin before :class:`~data_engine.tasks.base.Task` in a set task's bases; its ``oof_share`` reads
    the task's own ``example_correct`` (the predicted set is exactly the given one)."""

    def oof_share(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> float:
        """Share in [0, 1] of the labeled examples whose out-of-fold set is exactly the given one: the mean of
        ``example_correct(y, pred, classes)`` ((n,) bool) over the rows of ``pred`` (n, width) with finite
        values, 0.5 when none (:meth:`data_engine.tasks.base.Task.oof_share`)."""
        import numpy as np

        ok = np.isfinite(np.asarray(pred, dtype=float)).all(axis=1)
        if not ok.any():
            return 0.5
        return float(np.mean(self.example_correct(np.asarray(y)[ok], np.asarray(pred)[ok], classes)))  # type: ignore[attr-defined]


def json_items(value: object, error: type[Exception], *, empty: str, noun: str) -> list | tuple:
    """The items of a set label's ``value``: a list / tuple as is, or the JSON array its text holds.

    Raises ``error`` with ``empty`` for blank text (unlabeled, not an empty set), naming the text for
    invalid JSON, and saying it is not a list of ``noun`` otherwise."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise error(empty)
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise error(f"{text[:60]!r} is not valid JSON ({exc.msg})") from None
    if not isinstance(value, (list, tuple)):
        raise error(f"{str(value)[:60]!r} is not a list of {noun}")
    return value


def jsonl_objects(path: Path, error: type[Exception], *, name: str | None = None,
                  shape: str = "") -> Iterator[tuple[int, dict]]:
    """Each non-blank line of the JSONL file ``path`` as (1-based line number, object); raises ``error``
    naming the file (``name``, default the file's name) and line of a line that is not a JSON object,
    followed by ``shape`` (e.g. ``'; each line is {"id": ..., "label": ...}'``) when given.

    The file is read as UTF-8 with an optional byte-order mark, as spreadsheet exports write it."""
    where = path.name if name is None else name
    with open(path, encoding="utf-8-sig") as fh:
        for n, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{where} line {n}: not valid JSON ({exc.msg}){shape}") from None
            if not isinstance(row, dict):
                raise error(f"{where} line {n}: not a JSON object{shape}")
            yield n, row


def discard_majority(labels: Sequence[str], discard: str) -> tuple[bool, str | None]:
    """Whether ``discard`` answers decide the verdict of ``labels`` alone, and that verdict: a strict
    majority of discards is ``discard``, exactly half is a tie (None, pending); otherwise
    ``(False, None)`` and the sets decide (a discard counting as one answer with an empty set)."""
    discards = sum(1 for label in labels if label == discard)
    if 2 * discards > len(labels):
        return True, discard
    if 2 * discards == len(labels):
        return True, None
    return False, None


def mean_jaccard(labels: Sequence[str], verdict: str, items: Callable[[str], Iterable[Hashable]],
                 discard: str) -> float:
    """The mean Jaccard similarity of each answer's set (``items`` of a stored label) with the
    ``verdict``'s: 1 for two empty sets, a discard agreeing only with a discard; 0.0 without answers."""
    if not labels:
        return 0.0

    def jaccard(a: str, b: str) -> float:
        if discard in (a, b):
            return float(a == b)
        sa, sb = set(items(a)), set(items(b))
        return len(sa & sb) / len(sa | sb) if sa | sb else 1.0

    return sum(jaccard(label, verdict) for label in labels) / len(labels)
