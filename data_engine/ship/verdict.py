"""What the promotion gate decided, and why: the verdict, its checks, and their flat forms."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from data_engine.ship.baseline import BaselineFigure
from data_engine.ship.evaluation import Evaluation
from data_engine.ship.gold import UnmeasuredClass
from data_engine.tasks.paired import PairedDiff


@dataclass(frozen=True)
class Check:
    """One comparison the gate made.

    ``floor``: the lowest candidate value that passes (strict test only). For the paired test,
    ``diff`` (candidate minus champion, metric units), its interval ``low``..``high``, the one-sided
    p-value that the candidate is worse ``p_worse`` (Holm-adjusted for classes and slices) and the
    number of paired gold examples ``n``.
    """

    name: str
    candidate: float | None
    champion: float | None
    floor: float | None
    passed: bool
    detail: str
    n: int | None = None
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    p_worse: float | None = None


@dataclass(frozen=True)
class Provenance:
    """What a model was trained on, for the gate's tie-break: reviewed labels seen, label snapshot."""

    reviewed_labels: int
    label_snapshot: int


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision on one candidate; a Dagster asset check maps it to passed/refused + metadata."""

    promote: bool
    reason: str
    metric: str
    candidate_version: int | None
    champion_version: int | None
    checks: tuple[Check, ...] = ()
    candidate: Evaluation | None = None
    champion: Evaluation | None = None
    # Gold examples only the candidate gets right, and only the champion gets right.
    wins: int | None = None
    losses: int | None = None
    test: str = "paired"
    alpha: float | None = None
    headline: PairedDiff | None = None
    # Classes whose candidate recall on gold is below [gate] min_class_recall: {class: (recall, support)}.
    low_recall: dict[str, tuple[float, int]] | None = None
    # "better", "worse", "tied" (paired test), or None when no comparison was made.
    outcome: str | None = None
    candidate_seen: Provenance | None = None
    champion_seen: Provenance | None = None
    # Classes gold cannot measure (data_engine.ship.gold), and the gold version the verdict is on.
    unmeasured: tuple[UnmeasuredClass, ...] = ()
    gold_version: str | None = None
    # Gold examples left out for an exact or near copy in the training data (data_engine.ship.leakage).
    gold_leaked: int = 0
    # The trivial baseline a first model was compared with (None with a champion).
    baseline: BaselineFigure | None = None

    @property
    def failed_checks(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    @property
    def n_gold(self) -> int:
        """Gold examples both models were evaluated on."""
        return self.candidate.n_gold if self.candidate else 0

    def metadata(self) -> dict[str, Any]:
        """Flat, JSON-friendly figures for CLI output and the ``models.metrics`` gate record."""
        h = self.headline
        meta: dict[str, Any] = {
            "promote": self.promote, "verdict": "promoted" if self.promote else "refused",
            "reason": self.reason, "metric": self.metric, "test": self.test, "alpha": self.alpha,
            "outcome": self.outcome,
            "candidate_version": self.candidate_version, "champion_version": self.champion_version,
            "n_gold": self.n_gold, "checks_failed": len(self.failed_checks), "checks_total": len(self.checks),
            "gold_only_candidate_right": self.wins, "gold_only_champion_right": self.losses,
            "difference": h.diff if h else None, "ci_low": h.low if h else None, "ci_high": h.high if h else None,
            "ci_level": h.confidence if h else None, "p_worse": h.p_worse if h else None,
            "p_better": h.p_better if h else None,
            "low_recall_classes": {c: {"recall": r, "support": n} for c, (r, n) in (self.low_recall or {}).items()},
            "unmeasured_classes": {u.name: {"gold_support": u.gold_support,
                                            "candidate_out_of_fold_recall": u.candidate_oof,
                                            "champion_out_of_fold_recall": u.champion_oof, "passed": u.passed}
                                   for u in self.unmeasured},
            "gold_version": self.gold_version, "gold_leaked": self.gold_leaked,
            "baseline": self.baseline.name if self.baseline else None,
            "baseline_label": self.baseline.label if self.baseline else None,
            "baseline_figure": self.baseline.figure if self.baseline else None,
        }
        for label, ev in (("candidate", self.candidate), ("champion", self.champion)):
            if ev is not None:
                meta[f"{label}_accuracy"] = ev.accuracy
                meta[f"{label}_macro_f1"] = ev.macro_f1
        for label, seen in (("candidate", self.candidate_seen), ("champion", self.champion_seen)):
            if seen is not None:
                meta[f"{label}_reviewed_labels"] = seen.reviewed_labels
        return meta

    def check_rows(self) -> list[dict[str, Any]]:
        """One dict per check (for a table in the Dagster UI or JSON output)."""
        return [asdict(c) for c in self.checks]


def low_recall_phrase(low: dict[str, tuple[float, int]], threshold: float, *, unmeasured: bool = False) -> str:
    """``"low gold recall (< 0.5): class '8' 0.42 of 36"`` or ``"no class below ..."`` (``"no measured
    class ..."`` when some class is ``unmeasured``: the gate does not call fine a class gold cannot see)."""
    if not low:
        return f"no {'measured ' if unmeasured else ''}class has gold recall below {threshold:g}"
    shown = ", ".join(f"class {c!r} {r:.2f} of {n}" for c, (r, n) in low.items())
    return f"low gold recall (< {threshold:g}): {shown}"


def first_model_reason(metric: str, figure: float | None, n_gold: int, baseline: BaselineFigure | None,
                       higher_is_better: bool, eps: float = 1e-9) -> tuple[bool, str]:
    """Whether the first model (no champion yet) is promoted, and why: its ``metric`` ``figure`` on
    ``n_gold`` gold examples must be better (in the metric's direction, by more than float noise
    ``eps``) than the trivial ``baseline``'s on the same gold examples; not better, or no figure to
    compare, refuses. Without a ``baseline`` (a caller that has none) it is promoted, as before.

    The one place the first model's reason is worded, e.g. ``"first model: accuracy 0.5750 on 200 gold
    examples is not above the majority-class baseline's 0.6350 (the training labels alone, scored on
    the same gold)"``."""
    scored = (f"{metric} has no figure on the {n_gold} gold examples" if figure is None
              else f"{metric} {figure:.4f} on {n_gold} gold examples")
    if baseline is None:
        return True, f"first model: no champion yet; {scored}"
    if figure is None:
        return False, f"first model: {scored}, so it cannot be compared with the {baseline.name}"
    if baseline.figure is None:
        return False, f"first model: {scored}, but the {baseline.name} has no {metric} there, so the two cannot be compared"
    side = "above" if higher_is_better else "below"
    against = f"the {baseline.name}'s {baseline.figure:.4f}"
    better = figure > baseline.figure + eps if higher_is_better else figure < baseline.figure - eps
    if better:
        return True, f"first model: no champion yet; {scored}, {side} {against}"
    return False, f"first model: {scored} is not {side} {against} (the training labels alone, scored on the same gold)"
