"""The detection task's label check: cleanlab's object-detection flags and scores per image
(:func:`data_engine.tasks.box_issues.box_issues`) as the engine's :class:`~data_engine.tasks.base.LabelIssues`,
with the words a reviewer reads: which given box looks badly located or of the wrong class, and
which predicted box the labels seem to miss (overlooked), each with cleanlab's per-box score.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_engine.tasks.base import LabelIssues
from data_engine.tasks.box_issues import ScoredBox, box_issues
from data_engine.tasks.boxes import Box

# A per-box score below this names the box in the reviewer's note (cleanlab's scores: low = suspect).
NOTE_BELOW = 0.5
NOTE_BOXES = 3


def _where(b: Box) -> str:
    return f"{b.label} at x={b.x:g}, y={b.y:g}, w={b.w:g}, h={b.h:g}"


def _note(given: Sequence[Box], predicted: Sequence[ScoredBox], overlooked: np.ndarray, badloc: np.ndarray,
          swapped: np.ndarray) -> str:
    """The suspect boxes of one image, most suspect first (at most NOTE_BOXES), or '' for none."""
    found: list[tuple[float, str]] = []
    for b, s in zip(given, np.asarray(swapped, dtype=float)):
        if np.isfinite(s) and s < NOTE_BELOW:
            found.append((s, f"given {_where(b)} may be another class (score {s:.2f})"))
    for b, s in zip(given, np.asarray(badloc, dtype=float)):
        if np.isfinite(s) and s < NOTE_BELOW:
            found.append((s, f"given {_where(b)} may be badly located (score {s:.2f})"))
    for sb, s in zip(predicted, np.asarray(overlooked, dtype=float)):
        if np.isfinite(s) and s < NOTE_BELOW:
            found.append((s, f"model's {_where(sb.box)} (p={sb.score:.2f}) has no given box: overlooked? "
                             f"(score {s:.2f})"))
    found.sort(key=lambda t: t[0])
    return "; ".join(words for _, words in found[:NOTE_BOXES])


def find_box_issues(given: Sequence[Sequence[Box]], predicted: Sequence[Sequence[ScoredBox]],
                    classes: Sequence[str], suggested: tuple[Sequence[str], Sequence[float]]) -> LabelIssues:
    """Label issues of n images: given box sets against out-of-sample scored boxes (both length n,
    pixels; boxes of ``classes``). ``suggested``: the model's box set per image and its score (the
    task's ``best``). Scores and flags are cleanlab's (``object_detection.rank`` /
    ``object_detection.filter``, cleanlab docs); the detail names the suspect boxes."""
    n = len(given)
    if n == 0:
        return LabelIssues.none("no labeled images")
    # cleanlab's per-box scores index the predicted boxes in its own per-class order: pass them sorted
    # by class as it builds them, so a score names the right box.
    order = {c: k for k, c in enumerate(classes)}
    predicted = [sorted(p, key=lambda sb: order[sb.box.label]) for p in predicted]
    found = box_issues(given, predicted, classes)
    detail = [_note(g, p, o, b, s) for g, p, o, b, s in
              zip(given, predicted, found.overlooked, found.badly_located, found.swapped)]
    flagged = int(found.is_issue.sum())
    summary = {"images": n, "flagged": flagged,
               "given_boxes": int(sum(len(g) for g in given)),
               "predicted_boxes": int(sum(len(p) for p in predicted)),
               "source": "cleanlab.object_detection (filter.find_label_issues, rank.get_label_quality_scores)"}
    return LabelIssues(np.clip(found.scores, 0.0, 1.0), found.is_issue, list(suggested[0]),
                       np.asarray(suggested[1], dtype=float), detail, summary)
