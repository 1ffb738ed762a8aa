"""What several reviewers' answers mean when a label is a set (tags, entity spans): the discard
answer's majority and the Jaccard agreement, shared by the set-valued tasks."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence


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
