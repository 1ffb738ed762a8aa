"""Reading annotations and reaching a verdict: one reviewer's answer, or the consensus of several
(the dataset's task decides: for classes cleanlab.multiannotator's majority, a tie staying pending)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME
from data_engine.tasks import Classification, Task

# Server times as sortable text (pull cursors compare them as strings).
_TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass
class _Answer:
    """One reviewer's current answer on a task (their latest non-cancelled annotation)."""

    annotation_id: int
    annotator_id: int | None
    annotator: str
    choice: str
    lead_time: float | None
    updated_at: str
    # The server's creation time: with the id, what tells this answer from another under a reused id.
    created_at: str | None = None

    @property
    def label(self) -> str | None:
        return None if self.choice == DISCARD_CHOICE else self.choice


_TIE = object()


def _answers(task: dict[str, Any], users: dict[int, str], choices: Sequence[str] | None = None,
             problems: list[str] | None = None, label_task: Task | None = None) -> list[_Answer]:
    """Each reviewer's latest non-cancelled annotation with an answer on ``task``.

    The answer is read by the dataset's ``label_task`` (:meth:`~data_engine.tasks.Task.answer_label`;
    default: one class per example). An annotation that cannot be read (not an object, no integer
    id, no valid time, an answer that is not text or, given ``choices``, not one the task accepts,
    :meth:`~data_engine.tasks.Task.answer_problem`) is skipped and described in ``problems``: it
    carries no verdict the ledger could hold, and one bad answer must not block the others.
    """
    problems = [] if problems is None else problems
    label_task = label_task or Classification()
    raw = task.get("annotations")
    if raw is not None and not isinstance(raw, list):
        problems.append(f"task {task.get('id')}: annotations are {type(raw).__name__}, not a list")
        raw = []
    readable: list[tuple[str, int, dict[str, Any]]] = []
    for ann in raw or []:
        why = _unreadable(ann, choices, label_task)
        if why:
            problems.append(f"task {task.get('id')}: annotation {_short_id(ann)} skipped: {why}")
            continue
        readable.append((_norm_ts(ann["updated_at"]), int(ann["id"]), ann))
    latest: dict[Any, _Answer] = {}
    for updated_at, ann_id, ann in sorted(readable, key=lambda r: (r[0], r[1])):
        if ann.get("was_cancelled") is True:
            continue  # a skip changes nothing
        choice = label_task.answer_label(ann.get("result") or [], from_name=FROM_NAME)
        if choice is None:
            # Submitted with nothing chosen: no verdict, so it counts as a skip (the engine keeps the
            # task open, as for a skip), and it is said, not dropped in silence.
            problems.append(f"task {task.get('id')}: annotation {ann_id} has an empty result (submitted without "
                            "a choice); counted as a skip: choose a label on the task in Label Studio and update it")
            continue
        uid = ann.get("completed_by")
        uid = uid if isinstance(uid, int) and not isinstance(uid, bool) else None
        who = users.get(uid, f"label-studio-user:{uid}") if uid is not None else "label-studio-user:unknown"
        lead = ann.get("lead_time")
        lead_ok = isinstance(lead, (int, float)) and not isinstance(lead, bool) and math.isfinite(lead)
        latest[uid if uid is not None else ("ann", ann_id)] = _Answer(
            annotation_id=ann_id, annotator_id=uid, annotator=who, choice=choice,
            lead_time=float(lead) if lead_ok else None, updated_at=updated_at,
            created_at=ann.get("created_at") if isinstance(ann.get("created_at"), str) else None)
    return sorted(latest.values(), key=lambda a: (a.updated_at, a.annotation_id))


def _unreadable(ann: Any, choices: Sequence[str] | None, label_task: Task) -> str | None:
    """Why ``ann`` cannot be read as an answer (None when it can)."""
    if not isinstance(ann, dict):
        return f"not an object ({type(ann).__name__})"
    ann_id = ann.get("id")
    if isinstance(ann_id, bool) or not isinstance(ann_id, int) or ann_id <= 0:
        return "no positive integer id"
    try:
        if not _norm_ts(ann.get("updated_at") if isinstance(ann.get("updated_at"), str) else None):
            return "no updated_at time"
    except (ValueError, OverflowError):
        return "updated_at is not a time"
    result = ann.get("result")
    if result is not None and (not isinstance(result, list) or not all(isinstance(r, dict) for r in result)):
        return "result is not a list of regions"
    if ann.get("was_cancelled") is True:
        return None
    try:
        choice = label_task.answer_label(result or [], from_name=FROM_NAME)
    except (AttributeError, TypeError, KeyError, IndexError):
        return "the choice region is malformed"
    why = label_task.answer_problem(choice, choices) if choice is not None and choices is not None else None
    return f"choice {why}" if why else None


def _short_id(ann: Any) -> str:
    ann_id = ann.get("id") if isinstance(ann, dict) else None
    return str(ann_id)[:20] if isinstance(ann_id, (int, str)) else "?"


def _consensus(candidates: list[tuple[int, list[_Answer]]], label_task: Task | None = None,
               ) -> Iterator[tuple[int, Any, float | None, int, dict[str, str]]]:
    """The verdict per task by the dataset's ``label_task`` (:meth:`~data_engine.tasks.Task.consensus`;
    classification: cleanlab.multiannotator's majority vote); no verdict (a tie, a disagreement) is
    marked pending.

    Yields ``(task_id, label | _TIE, agreement, n_votes, votes)``; the discard answer's label is None.
    """
    label_task = label_task or Classification()
    for task_id, answers in candidates:
        given = [a.choice for a in answers]
        votes = {a.annotator: a.choice for a in answers}
        choice = label_task.consensus(given)
        if choice is None:
            yield task_id, _TIE, None, len(answers), votes
            continue
        agreement = label_task.agreement(given, choice)
        yield (task_id, None if choice == DISCARD_CHOICE else choice, round(agreement, 4), len(answers), votes)


def _norm_ts(value: str | None) -> str:
    """A server time as a sortable ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` string ('' for None)."""
    if not value:
        return ""
    dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime(_TS_FORMAT)


def _shift(ts: str, delta: timedelta) -> str:
    return (datetime.fromisoformat(ts.replace("Z", "+00:00")) + delta).astimezone(UTC).strftime(_TS_FORMAT)
