"""The promotion gate: compare a candidate with the champion on the same gold examples and decide.

Rules (:func:`decide_promotion`, a pure function):

1. No gold data, or fewer than ``[gate] min_gold`` gold examples: refuse, and say so.
2. A configured slice with no gold examples: refuse (a "unit test" that cannot run is not passed).
   The newest mining run's discovered weak slices (:mod:`data_engine.mine.slices`) with gold
   examples are checked like configured slices below; one without any is left out.
3. No champion yet: the candidate (the first model) passes only when its metric on gold is better
   than the task's trivial baseline's on the same gold examples (:mod:`data_engine.tasks.baseline`:
   the training labels' majority class, each tag's majority, the training mean, the empty set of
   boxes or spans), with both figures recorded.
4. ``[gate] test = "paired"`` (default): both models' answers on the same gold examples are
   compared pair by pair by the dataset's task (:meth:`data_engine.tasks.Task.paired_test` and
   :meth:`~data_engine.tasks.Task.class_tests`; for classes :mod:`data_engine.tasks.paired`:
   McNemar's exact test for accuracy and recall, a paired bootstrap for macro-F1). The candidate is refused only when it is worse
   beyond what the gold set resolves: one-sided p < ``[gate] alpha`` on ``[gate] metric``, or on
   a class's recall or a slice's metric (Holm-adjusted over classes and slices, each tested on its
   own gold support). Significantly better: promoted. Tied within that resolution (neither
   one-sided test below alpha) and the candidate not worse on gold's point estimate by more than
   ``[gate] tie_tolerance`` of the champion's figure (in the metric's direction: a higher MAE is
   worse): the model trained on more reviewed labels wins (then the newer label snapshot), so
   corrections reach the served model even when gold is too small to see their effect. Tied but
   worse beyond that tolerance: the champion stays, whatever the candidate was trained on.
5. ``[gate] test = "strict"`` (the engine's first rule, kept for comparison): at least the
   champion's metric exactly, no class or slice dropping by more than ``max(tolerance, 1/support)``.

Every verdict states the difference, its interval and p-value and the gold size, and names the
classes whose gold recall is below ``[gate] min_class_recall`` and the classes gold cannot measure
(fewer than ``[gate] min_class_gold`` gold examples; ``[gate] unmeasured`` says whether they block
promotion, :mod:`data_engine.ship.gold`). Both models are evaluated on the current gold set, whose
version (a content hash) each verdict records; a change since the previous verdict is said in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ship.evaluation import (  # noqa: F401 - the gate's public names
    Evaluation,
    SliceResult,
    evaluate_predictions,
    load_gold,
    predict_gold,
    slice_mask,
)
from data_engine.ship.gold import (
    UnmeasuredClass,
    assess_unmeasured,
    gold_change,
    last_verdict_gold,
    record_gold_score,
    record_gold_version,
    recorded_out_of_fold,
    unmeasured_phrase,
)
from data_engine.ship.baseline import BaselineFigure, baseline_figure, candidate_baseline
from data_engine.ship.leakage import scored_gold
from data_engine.tasks.paired import PairedDiff, holm
from data_engine.ship.registry import (
    GateRecord,
    ModelRecord,
    current_champion,
    get_model,
    latest_candidate,
    no_candidate_message,
    record_gate_verdict,
    record_metrics,
    set_status,
)
from data_engine.ship.verdict import Check, GateVerdict, Provenance, first_model_reason, low_recall_phrase
from data_engine.store.config import EngineConfig, GateConfig
from data_engine.store.home import Home
from data_engine.tasks import Classification, Task, task_for
from data_engine.tasks.baseline import TrivialBaseline

# Float noise must not make an equal model "worse".
_EPS = 1e-9
# The strict test's tolerance when [gate] tolerance is not set.
STRICT_TOLERANCE = 0.02
# How a tie-break that favours the candidate ends its reason, once nothing else refused it.
PROMOTED = "so the candidate is promoted"


def decide_promotion(
    candidate: Evaluation,
    champion: Evaluation | None,
    gate: GateConfig,
    *,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    slice_masks: dict[str, np.ndarray] | None = None,
    candidate_seen: Provenance | None = None,
    champion_seen: Provenance | None = None,
    unmeasured: Sequence[UnmeasuredClass] = (),
    task: Task | None = None,
    baseline: BaselineFigure | None = None,
) -> GateVerdict:
    """The gate's decision for ``candidate`` against ``champion`` (None: no champion yet). Pure.

    ``pairs``: ``(y_true, candidate_pred, champion_pred)``, each shape (N,), the gold labels and both
    models' predictions on the same N examples (required by the paired test when there is a champion);
    ``slice_masks``: ``{slice name: (N,) bool}``. ``candidate_seen``/``champion_seen``: the tie-break's
    input (without them a tie goes to the candidate). ``unmeasured``: the classes gold cannot measure
    (:func:`data_engine.ship.gold.assess_unmeasured`); one that did not pass refuses a candidate the
    gold figures would promote, and none is called fine. ``task``: the dataset's task, whose paired
    tests and metric direction the gate uses (default: classification). ``baseline``: the task's
    trivial baseline on the same gold examples, which a first model must beat (without it, as before,
    a first model passes).
    """
    task = task or Classification()
    # An unset [gate] metric is the task's default figure (accuracy for classes, MAE for numbers).
    gate = replace(gate, metric=gate.metric or task.default_metric)
    unmeasured = tuple(unmeasured)
    holes = {u.name for u in unmeasured}
    low = {c: (r, candidate.per_class_support.get(c, 0)) for c, r in candidate.per_class_recall.items()
           if r < gate.min_class_recall - _EPS and c not in holes}
    base = GateVerdict(False, "", gate.metric, candidate.version, champion.version if champion else None,
                       (), candidate, champion, test=gate.test, alpha=gate.alpha, low_recall=low,
                       candidate_seen=candidate_seen, champion_seen=champion_seen, unmeasured=unmeasured)
    refusal = _precondition(candidate, gate)
    empty_slices = [Check(f"slice {name}", None, None, None, False, f"slice {name!r} has no gold examples, "
                          "so it cannot be checked") for name, res in candidate.slices.items() if res.n == 0]
    if refusal is None and empty_slices:
        refusal = "; ".join(c.detail for c in empty_slices)
    if refusal is not None:
        verdict = replace(base, reason=refusal, checks=tuple(empty_slices))
    elif champion is None:
        promote, reason = first_model_reason(gate.metric, candidate.metric(gate.metric), candidate.n_gold, baseline,
                                             task.higher_is_better(gate.metric), _EPS)
        verdict = replace(base, promote=promote, reason=reason, baseline=baseline)
    elif gate.test == "strict":
        verdict = _strict(base, candidate, champion, gate, task)
    else:
        if pairs is None:
            raise EngineError("the paired gate needs both models' predictions on the gold examples")
        verdict = _paired(base, pairs, slice_masks or {}, gate, task)
    # Per-class recall exists only for a task with classes (a number has none to name).
    notes = ([low_recall_phrase(low, gate.min_class_recall, unmeasured=bool(unmeasured))]
             if candidate.n_gold and task.has_classes else [])
    if candidate.n_gold and unmeasured:
        verdict = _judge_unmeasured(verdict, gate)
        notes.append(unmeasured_phrase(unmeasured, gate))
    if verdict.promote and verdict.outcome == "tied":
        # The tie-break's evidence says why; its decision is said only once it is the final one.
        verdict = replace(verdict, reason=f"{verdict.reason}, {PROMOTED}")
    if gate.test == "paired" and gate.tolerance is not None:
        notes.append("gate.tolerance is deprecated and ignored by test = 'paired' (only test = 'strict' reads it)")
    return replace(verdict, reason="; ".join([verdict.reason, *notes]))


def _judge_unmeasured(verdict: GateVerdict, gate: GateConfig) -> GateVerdict:
    """Add a check per unmeasured class; refuse a candidate the gold figures promote when one failed."""
    checks = tuple(Check(f"unmeasured {u.name}", u.candidate_oof, u.champion_oof, None, u.passed, u.detail,
                         u.gold_support) for u in verdict.unmeasured)
    verdict = replace(verdict, checks=verdict.checks + checks)
    failed = [u.name for u in verdict.unmeasured if not u.passed]
    if not verdict.promote or not failed:
        return verdict
    return replace(verdict, promote=False, reason=(
        # No "refused:" prefix: every caller already prints the status before the reason.
        f"gold cannot measure class(es) {', '.join(map(repr, failed))} and [gate] unmeasured = "
        f"{gate.unmeasured!r} does not let them through (see 'unmeasured on gold' below); the gold figures "
        f"alone would promote the candidate: {verdict.reason}"))


def _precondition(candidate: Evaluation, gate: GateConfig) -> str | None:
    """Why the gate cannot judge at all, or None."""
    if candidate.n_gold == 0:
        return ("no gold data: the gate cannot evaluate the candidate, so it refuses to promote; "
                "put labeled files under landing/gold/")
    if candidate.n_gold < gate.min_gold:
        return (f"only {candidate.n_gold} gold examples (gate.min_gold = {gate.min_gold}); "
                "refusing to promote on so little evidence")
    return None


def _paired(base: GateVerdict, pairs: tuple[np.ndarray, np.ndarray, np.ndarray],
            slice_masks: dict[str, np.ndarray], gate: GateConfig, task: Task) -> GateVerdict:
    """Rule 4: the task's paired test on the metric, then its per-class tests and the slices (Holm-adjusted)."""
    y, cand, champ = (np.asarray(a) for a in pairs)
    alpha, metric = gate.alpha, gate.metric
    head = task.paired_test(y, cand, champ, metric, alpha=alpha)
    family: list[tuple[str, str, PairedDiff]] = task.class_tests(y, cand, champ, alpha=alpha)
    for name, mask in slice_masks.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            family.append((f"slice {name}", f"slice {name!r} {metric}",
                           task.paired_test(y[mask], cand[mask], champ[mask], metric, alpha=alpha)))
    adjusted = holm([d.p_worse for _, _, d in family])
    ev_c, ev_h = base.candidate, base.champion
    checks = [_check(metric, metric, head, head.p_worse, alpha, ev_c.metric(metric), ev_h.metric(metric))]
    for (name, label, d), p in zip(family, adjusted):
        checks.append(_check(name, label, d, p, alpha, *_figures(name, ev_c, ev_h, metric)))
    failed = [c for c in checks if not c.passed]
    pair = f"candidate v{base.candidate_version} {{}} champion v{base.champion_version} on {head.n} gold examples: "
    vs = pair.format("vs") + head.describe(metric)
    verdict = replace(base, checks=tuple(checks), headline=head, wins=head.wins, losses=head.losses)
    if failed:
        return replace(verdict, outcome="worse", reason=pair.format("refused against") + head.describe(metric)
                       + f"; worse beyond what gold resolves (alpha {alpha:g}): " + "; ".join(c.detail for c in failed))
    if head.p_better < alpha:
        return replace(verdict, promote=True, outcome="better",
                       reason=f"better beyond what gold resolves (alpha {alpha:g}): {vs}")
    cs, hs = base.candidate_seen, base.champion_seen
    tie = f"tied within what {head.n} gold examples resolve (alpha {alpha:g}): {vs}"
    worse_by, allowed = tie_shortfall(head.diff, ev_h.metric(metric), task.higher_is_better(metric),
                                      gate.tie_tolerance)
    if worse_by > allowed + _EPS:
        return replace(verdict, outcome="tied", reason=(
            f"{tie}; but the candidate is worse on gold by {worse_by:.4f} {metric}, more than the tie-break "
            f"allows ([gate] tie_tolerance {gate.tie_tolerance:g} of the champion's {ev_h.metric(metric):.4f} "
            f"= {allowed:.4f}), so the champion stays"))
    if cs is None or hs is None or (cs.reviewed_labels, cs.label_snapshot) >= (hs.reviewed_labels, hs.label_snapshot):
        return replace(verdict, promote=True, outcome="tied",
                       reason=f"{tie}{_tie_break(cs, hs)}")
    return replace(verdict, outcome="tied", reason=f"{tie}; the champion was trained on more reviewed "
                   f"labels ({hs.reviewed_labels} against {cs.reviewed_labels}), so it stays")


def tie_shortfall(diff: float, champion_figure: float, higher_is_better: bool,
                  tie_tolerance: float) -> tuple[float, float]:
    """(how much worse the candidate is on gold's point estimate, how much worse a tie-break allows),
    both in metric units, >= 0. ``diff``: candidate minus champion (:class:`PairedDiff`); worse is
    a lower score or a higher error; the allowance is ``tie_tolerance`` times the champion's figure
    (a share, so it means the same for a fraction and for an MAE in the label's own units)."""
    worse_by = max(0.0, -diff if higher_is_better else diff)
    return worse_by, tie_tolerance * abs(float(champion_figure))


def _tie_break(cs: Provenance | None, hs: Provenance | None) -> str:
    """What decided a tie for the candidate: more reviewed labels, or (as many) a newer label snapshot."""
    if cs is None or hs is None:
        return ""
    if cs.reviewed_labels > hs.reviewed_labels:
        return (f"; the candidate was trained on {cs.reviewed_labels} reviewed labels, the champion on "
                f"{hs.reviewed_labels}")
    # Equal counts: a new labeled batch, or a second opinion that changed a reviewed label.
    return (f"; both were trained on {cs.reviewed_labels} reviewed labels and the candidate on the newer "
            f"label snapshot ({cs.label_snapshot} against {hs.label_snapshot})")


def _figures(name: str, cand: Evaluation, champ: Evaluation, metric: str) -> tuple[float | None, float | None]:
    """Both models' figure for the check ``name`` (``recall C`` or ``slice S``)."""
    kind, _, key = name.partition(" ")
    if kind == "recall":
        return cand.per_class_recall.get(key), champ.per_class_recall.get(key)
    c, h = cand.slices.get(key), champ.slices.get(key)
    return (getattr(c, metric, None) if c else None), (getattr(h, metric, None) if h else None)


def _check(name: str, label: str, d: PairedDiff, p: float, alpha: float, cand: float | None,
           champ: float | None) -> Check:
    """A paired check: passed unless ``p`` (adjusted p-value that the candidate is worse) < ``alpha``."""
    ok = p >= alpha
    detail = (f"{label} {d.diff:+.4f} on {d.n} gold examples ({d.confidence:.0%} CI [{d.low:+.4f}, {d.high:+.4f}], "
              f"Holm-adjusted one-sided p-value for worse {p:.3g})")
    return Check(name, cand, champ, None, ok, detail, d.n, d.diff, d.low, d.high, p)


def _strict(base: GateVerdict, candidate: Evaluation, champion: Evaluation, gate: GateConfig,
            task: Task) -> GateVerdict:
    """Rule 5: at least the champion's metric exactly (in the task's direction); classes and slices
    within the tolerance."""
    metric = gate.metric
    tol = STRICT_TOLERANCE if gate.tolerance is None else gate.tolerance
    cand_m, champ_m = candidate.metric(metric), champion.metric(metric)
    sign = 1.0 if task.higher_is_better(metric) else -1.0
    ok = sign * (cand_m - champ_m) + _EPS >= 0
    checks = [Check(metric, cand_m, champ_m, champ_m, ok, f"{metric} {cand_m:.4f} {'>=' if ok else '<'} "
                    f"champion's {champ_m:.4f} on {candidate.n_gold} gold examples", candidate.n_gold,
                    cand_m - champ_m)]
    for cls, champ_r in champion.per_class_recall.items():
        cand_r = candidate.per_class_recall.get(cls, 0.0)
        support = candidate.per_class_support.get(cls, 0)
        floor = champ_r - _allowed_drop(tol, support)
        ok = cand_r + _EPS >= floor
        checks.append(Check(f"recall {cls}", cand_r, champ_r, floor, ok,
                            f"recall of class {cls!r} {cand_r:.4f} vs champion's {champ_r:.4f} "
                            f"({'within' if ok else 'drops more than'} the allowed {champ_r - floor:.4f})",
                            support, cand_r - champ_r))
    for name, cand_s in candidate.slices.items():
        champ_s = champion.slices.get(name)
        if cand_s.n == 0 or champ_s is None or champ_s.n == 0:
            continue
        c_val, h_val = getattr(cand_s, metric), getattr(champ_s, metric)
        # The allowed change in the metric's direction: a lower score or a higher error is worse.
        floor = h_val - sign * _allowed_drop(tol, cand_s.n)
        ok = sign * (c_val - floor) + _EPS >= 0
        checks.append(Check(f"slice {name}", c_val, h_val, floor, ok,
                            f"slice {name!r} {metric} {c_val:.4f} vs champion's {h_val:.4f} "
                            f"({'within' if ok else 'worse than'} the allowed {abs(h_val - floor):.4f})",
                            cand_s.n, c_val - h_val))
    failed = [c for c in checks if not c.passed]
    verdict = replace(base, checks=tuple(checks))
    if failed:
        head = f"candidate v{base.candidate_version} refused against champion v{base.champion_version} (strict test): "
        return replace(verdict, reason=head + "; ".join(c.detail for c in failed))
    return replace(verdict, promote=True, reason=f"candidate v{base.candidate_version} {metric} {cand_m:.4f} >= "
                   f"champion v{base.champion_version} {champ_m:.4f} on {candidate.n_gold} gold examples; no class "
                   f"or slice dropped more than allowed (strict test, tolerance {tol})")


def _allowed_drop(tolerance: float, support: int) -> float:
    """The drop a class or slice check allows: the tolerance, or one example's worth if larger.

    One of 36 gold examples of a class is 2.8 points, more than a 0.02 tolerance: a single example
    is below what the gold set can resolve.
    """
    return max(tolerance, 1.0 / support) if support > 0 else tolerance


def provenance(con: duckdb.DuckDBPyConnection, record: ModelRecord) -> Provenance:
    """The reviewed labels model ``record`` saw: examples with a reviewer's verdict up to its label snapshot."""
    n = con.execute(
        "SELECT count(DISTINCT example_id) FROM label_events WHERE source IN ('review', 'consensus') "
        "AND event_id <= ?", [record.label_snapshot],
    ).fetchone()[0]
    return Provenance(int(n), record.label_snapshot)


def gate_gold(home: Home, cfg: EngineConfig, record: ModelRecord, champion: ModelRecord | None,
              gold: pd.DataFrame, *, candidate_seen: Provenance | None = None,
              champion_seen: Provenance | None = None, classes: Sequence[str] = (),
              discovered: dict[str, np.ndarray] | None = None, baseline: TrivialBaseline | None = None) -> GateVerdict:
    """Predict ``gold`` with both models and decide (no warehouse writes).

    ``classes``: the dataset's classes; with the classes either model predicts, the ones gold must
    measure (:func:`data_engine.ship.gold.assess_unmeasured`). ``discovered``: the discovered weak
    slices' gold rows, ``{name: (N,) bool}``; each with gold rows is checked like a configured slice
    (one without is left out: gold need not cover what mining found in the training data).
    ``baseline``: the candidate's trivial baseline, scored on ``gold`` when there is no champion.
    """
    y_true = gold["label"].astype(str).to_numpy() if len(gold) else np.array([], dtype=object)
    slices = cfg.gate.slices
    masks = {s.name: slice_mask(gold, s) for s in slices} if len(gold) else {}
    found = {k: np.asarray(m, dtype=bool) for k, m in (discovered or {}).items()
             if k not in masks and len(m) == len(gold) and np.asarray(m).any()}
    masks |= found
    task = task_for(cfg.dataset)
    cand_pred = predict_gold(home, record, gold)
    cand_eval = evaluate_predictions(y_true, cand_pred, frame=gold, slices=slices, version=record.version,
                                     task=task, classes=list(classes), masks=found)
    champ_eval, pairs, first = None, None, None
    if champion is None and baseline is not None and len(gold):
        first = baseline_figure(baseline, y_true, cfg.gate.metric or task.default_metric, task, classes)
    if champion is not None and len(gold):
        champ_pred = predict_gold(home, champion, gold)
        champ_eval = evaluate_predictions(y_true, champ_pred, frame=gold, slices=slices, version=champion.version,
                                          task=task, classes=list(classes), masks=found)
        pairs = (y_true, cand_pred, champ_pred)
    unmeasured = assess_unmeasured(
        [*classes, *record.classes, *(champion.classes if champion else ())], cand_eval.per_class_support,
        cand_eval.per_class_recall, cfg.gate, candidate_oof=recorded_out_of_fold(record.params),
        champion_oof=recorded_out_of_fold(champion.params) if champion else None,
        champion_classes=champion.classes if champion else None)
    verdict = decide_promotion(cand_eval, champ_eval, cfg.gate, pairs=pairs, slice_masks=masks,
                               candidate_seen=candidate_seen, champion_seen=champion_seen, unmeasured=unmeasured,
                               task=task, baseline=first)
    # The strict test: still show what the difference is made of, where an example is plainly right or wrong (one
    # class). A box or span set compared as text is never equal to gold, so those counts read 0 and 0 (trial 22).
    if pairs is not None and verdict.wins is None and task.column_labels == "class":
        correct_c, correct_h = cand_pred == y_true, pairs[2] == y_true
        verdict = replace(verdict, wins=int(np.sum(correct_c & ~correct_h)), losses=int(np.sum(~correct_c & correct_h)))
    return verdict


def discovered_slice_masks(con: duckdb.DuckDBPyConnection, cfg: EngineConfig,
                           gold: pd.DataFrame) -> tuple[dict[str, np.ndarray], list[str]]:
    """The newest mining run's discovered weak slices on ``gold`` (N rows): ``{name: (N,) bool}``, and
    a sentence per slice that cannot be applied to gold (:func:`data_engine.mine.slices.stored_slice_masks`)."""
    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.slices import stored_slice_masks, stored_slices

    return stored_slice_masks(stored_slices(con), gold, configured_embedding(cfg))


def gate_record_of(verdict: GateVerdict, version: int) -> GateRecord:
    """The verdict on model ``version`` as the typed row ``gate_verdicts`` stores."""
    h = verdict.headline
    return GateRecord(
        model_version=int(version), champion_version=verdict.champion_version, passed=verdict.promote,
        metric=verdict.metric, test=verdict.test, alpha=verdict.alpha, outcome=verdict.outcome, n_gold=verdict.n_gold,
        difference=h.diff if h else None, ci_low=h.low if h else None, ci_high=h.high if h else None,
        p_worse=h.p_worse if h else None, p_better=h.p_better if h else None, reason=verdict.reason,
        gold_version=verdict.gold_version, unmeasured=tuple(u.name for u in verdict.unmeasured))


def run_gate(
    con: duckdb.DuckDBPyConnection, home: Home, cfg: EngineConfig | None = None, version: int | None = None
) -> GateVerdict:
    """Evaluate a candidate (``version``, default the newest candidate) and the champion on gold; decide.

    Records the candidate's figures and the verdict in ``models.metrics``; a refused candidate gets
    status ``refused`` with the reason. Promotion itself is :func:`data_engine.ship.deploy.promote`.
    """
    cfg = cfg or home.config
    record = get_model(con, version) if version is not None else latest_candidate(con)
    if record is None:
        raise EngineError(no_candidate_message(con))
    champion = current_champion(con)
    if champion is not None and champion.version == record.version:
        raise EngineError(f"model v{record.version} is already the champion")
    from data_engine.store.schema import load_classes

    # Gold examples with a copy in the training data measure memory: scored without them.
    gold, leaked = scored_gold(con, cfg)
    gold_version, previous = record_gold_version(con), last_verdict_gold(con)
    discovered, not_checked = discovered_slice_masks(con, cfg, gold)
    baseline = candidate_baseline(con, cfg, record, task_for(cfg.dataset)) if champion is None else None
    verdict = gate_gold(home, cfg, record, champion, gold, candidate_seen=provenance(con, record),
                        champion_seen=provenance(con, champion) if champion else None, classes=load_classes(con),
                        discovered=discovered, baseline=baseline)
    change = gold_change(con, previous, gold_version.version) if previous else None
    left_out = (f"; left out {leaked} gold example(s) with an exact or near copy in the training data"
                if leaked else "")
    verdict = replace(verdict, gold_version=gold_version.version, gold_leaked=leaked,
                      reason=verdict.reason + left_out + "".join(f"; {n}" for n in not_checked)
                      + (f"; {change.line()}" if change else ""))
    # The candidate's figures carry what they were compared with: a later deploy step checks that
    # the champion is still the one the gate saw.
    gate_info = {k: v for k, v in verdict.metadata().items() if k not in ("candidate_accuracy", "candidate_macro_f1")}
    record_metrics(con, record.version, {**verdict.candidate.to_dict(), "gate": gate_info})
    holes = [u.name for u in verdict.unmeasured]
    if verdict.candidate is not None and verdict.n_gold:
        record_gold_score(con, record.version, gold_version, verdict.candidate, holes)
    if champion is not None and verdict.champion is not None:
        record_metrics(con, champion.version, {**verdict.champion.to_dict(), "gold_version": gold_version.version})
        record_gold_score(con, champion.version, gold_version, verdict.champion, holes)
    record_gate_verdict(con, gate_record_of(verdict, record.version))
    set_status(con, record.version, "candidate" if verdict.promote else "refused", verdict.reason)
    return verdict
