"""The promotion gate: evaluate models on gold data and decide whether a candidate may replace the champion.

Rules (:func:`decide_promotion`, a pure function):

1. No gold data, or fewer than ``[gate] min_gold`` gold examples: refuse, and say so.
2. A configured slice with no gold examples: refuse (a "unit test" that cannot run is not passed).
3. No champion yet: the candidate passes (it is the first model), with its figures recorded.
4. Otherwise the candidate must be at least as good as the champion on ``[gate] metric``, and no
   class's recall and no slice's metric may drop by more than ``[gate] tolerance``. A drop of a
   single gold example is below what the gold set can resolve (one of 36 examples of a class is
   2.8 points), so a class or slice check allows at least one example's worth: the allowed drop is
   ``max(tolerance, 1 / support)``.

Both models are evaluated on the same, current gold set: gold grows, so stored figures go stale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from data_engine.errors import EngineError
from data_engine.ship.registry import (
    ModelRecord,
    current_champion,
    get_model,
    latest_candidate,
    load_model,
    record_metrics,
    set_status,
)
from data_engine.store.config import EngineConfig, GateConfig, SliceConfig
from data_engine.store.home import Home

# Float noise must not make an equal model "worse".
_EPS = 1e-9
# How `models.reason` starts for a candidate the gate let through (read by deploy.promote_gated).
PASSED_PREFIX = "gate passed: "


@dataclass(frozen=True)
class SliceResult:
    """A model's figures on one configured slice of the gold data."""

    n: int
    accuracy: float | None
    macro_f1: float | None


@dataclass(frozen=True)
class Evaluation:
    """A model's figures on the gold data."""

    version: int | None
    n_gold: int
    accuracy: float | None
    macro_f1: float | None
    per_class_recall: dict[str, float] = field(default_factory=dict)
    slices: dict[str, SliceResult] = field(default_factory=dict)
    per_class_support: dict[str, int] = field(default_factory=dict)

    def metric(self, name: str) -> float | None:
        """The figure named ``name`` (``accuracy`` or ``macro_f1``)."""
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (stored in ``models.metrics``)."""
        return asdict(self)


@dataclass(frozen=True)
class Check:
    """One comparison the gate made. ``floor`` is the lowest candidate value that passes."""

    name: str
    candidate: float | None
    champion: float | None
    floor: float | None
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateVerdict:
    """The gate's decision on one candidate; a Dagster asset check maps it to passed/failed + metadata."""

    promote: bool
    reason: str
    metric: str
    candidate_version: int | None
    champion_version: int | None
    checks: tuple[Check, ...] = ()
    candidate: Evaluation | None = None
    champion: Evaluation | None = None
    # Gold examples only the candidate gets right, and only the champion gets right (what the
    # accuracy difference is made of; a handful either way is within the gold set's noise).
    wins: int | None = None
    losses: int | None = None

    @property
    def failed_checks(self) -> list[Check]:
        """The checks that did not pass."""
        return [c for c in self.checks if not c.passed]

    def metadata(self) -> dict[str, Any]:
        """Flat, JSON-friendly figures for asset-check metadata and CLI output."""
        meta: dict[str, Any] = {
            "promote": self.promote, "reason": self.reason, "metric": self.metric,
            "candidate_version": self.candidate_version, "champion_version": self.champion_version,
            "n_gold": self.candidate.n_gold if self.candidate else 0,
            "checks_failed": len(self.failed_checks), "checks_total": len(self.checks),
            "gold_only_candidate_right": self.wins, "gold_only_champion_right": self.losses,
        }
        for label, ev in (("candidate", self.candidate), ("champion", self.champion)):
            if ev is not None:
                meta[f"{label}_accuracy"] = ev.accuracy
                meta[f"{label}_macro_f1"] = ev.macro_f1
        return meta

    def checks_markdown(self) -> str:
        """The checks as a Markdown table (for the Dagster UI)."""
        lines = ["| check | candidate | champion | floor | passed |", "|---|---|---|---|---|"]
        for c in self.checks:
            lines.append(f"| {c.name} | {_fmt(c.candidate)} | {_fmt(c.champion)} | {_fmt(c.floor)} | "
                         f"{'yes' if c.passed else '**no**'} |")
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4f}"


def slice_mask(frame: pd.DataFrame, spec: SliceConfig) -> np.ndarray:
    """Boolean mask, shape (N,), of the rows of ``frame`` in slice ``spec``."""
    if spec.column not in frame.columns:
        raise EngineError(f"gate.slices {spec.name!r}: column {spec.column!r} is not a dataset input column")
    col = frame[spec.column]
    mask = np.ones(len(frame), dtype=bool)
    if spec.equals is not None:
        mask &= (col.astype(str) == spec.equals).to_numpy()
    if spec.min is not None or spec.max is not None:
        values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            if spec.min is not None:
                mask &= values >= spec.min
            if spec.max is not None:
                mask &= values <= spec.max
    return mask


def evaluate_predictions(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    *,
    frame: pd.DataFrame | None = None,
    slices: tuple[SliceConfig, ...] = (),
    version: int | None = None,
) -> Evaluation:
    """Figures of predictions ``y_pred`` (N,) against gold labels ``y_true`` (N,).

    ``frame`` (N rows) holds the input columns the ``slices`` select on.
    """
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    if len(y_true) == 0:
        return Evaluation(version, 0, None, None, {}, {s.name: SliceResult(0, None, None) for s in slices})
    present = sorted({str(v) for v in y_true})
    # Macro-F1 over the classes in gold: a class the gold set lacks says nothing about the model.
    recalls = recall_score(y_true, y_pred, labels=present, average=None, zero_division=0)
    results = {}
    for spec in slices:
        mask = slice_mask(frame, spec) if frame is not None else np.zeros(len(y_true), dtype=bool)
        n = int(mask.sum())
        if n == 0:
            results[spec.name] = SliceResult(0, None, None)
            continue
        yt, yp = y_true[mask], y_pred[mask]
        results[spec.name] = SliceResult(
            n, float(accuracy_score(yt, yp)),
            float(f1_score(yt, yp, labels=sorted(set(yt)), average="macro", zero_division=0)),
        )
    return Evaluation(
        version=version, n_gold=len(y_true), accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        per_class_recall={c: float(r) for c, r in zip(present, recalls)}, slices=results,
        per_class_support={c: int(np.sum(y_true == c)) for c in present},
    )


def decide_promotion(candidate: Evaluation, champion: Evaluation | None, gate: GateConfig) -> GateVerdict:
    """The gate's decision for ``candidate`` against ``champion`` (None: no champion yet). Pure."""
    metric, tol = gate.metric, gate.tolerance
    cand_v = candidate.version
    champ_v = champion.version if champion else None

    def verdict(promote: bool, reason: str, checks: list[Check]) -> GateVerdict:
        """A verdict carrying both evaluations."""
        return GateVerdict(promote, reason, metric, cand_v, champ_v, tuple(checks), candidate, champion)

    if candidate.n_gold == 0:
        return verdict(False, "no gold data: the gate cannot evaluate the candidate, so it refuses to promote; "
                              "put labeled files under landing/gold/", [])
    if candidate.n_gold < gate.min_gold:
        return verdict(False, f"only {candidate.n_gold} gold examples (gate.min_gold = {gate.min_gold}); "
                              "refusing to promote on so little evidence", [])
    checks: list[Check] = []
    for name, res in candidate.slices.items():
        if res.n == 0:
            checks.append(Check(f"slice {name}", None, None, None, False,
                                f"slice {name!r} has no gold examples, so it cannot be checked"))
    if champion is None:
        failed = [c.detail for c in checks]
        if failed:
            return verdict(False, "; ".join(failed), checks)
        return verdict(True, f"first model: no champion yet; {metric} {candidate.metric(metric):.4f} on "
                             f"{candidate.n_gold} gold examples", checks)

    cand_m, champ_m = candidate.metric(metric), champion.metric(metric)
    ok = cand_m + _EPS >= champ_m
    checks.append(Check(metric, cand_m, champ_m, champ_m, ok,
                        f"{metric} {cand_m:.4f} {'>=' if ok else '<'} champion's {champ_m:.4f}"))
    for cls, champ_r in champion.per_class_recall.items():
        cand_r = candidate.per_class_recall.get(cls, 0.0)
        floor = champ_r - _allowed_drop(tol, candidate.per_class_support.get(cls, 0))
        ok = cand_r + _EPS >= floor
        checks.append(Check(f"recall {cls}", cand_r, champ_r, floor, ok,
                            f"recall of class {cls!r} {cand_r:.4f} vs champion's {champ_r:.4f} "
                            f"({'within' if ok else 'drops more than'} the allowed {champ_r - floor:.4f})"))
    for name, cand_s in candidate.slices.items():
        champ_s = champion.slices.get(name)
        if cand_s.n == 0 or champ_s is None or champ_s.n == 0:
            continue
        c_val, h_val = getattr(cand_s, metric), getattr(champ_s, metric)
        floor = h_val - _allowed_drop(tol, cand_s.n)
        ok = c_val + _EPS >= floor
        checks.append(Check(f"slice {name}", c_val, h_val, floor, ok,
                            f"slice {name!r} {metric} {c_val:.4f} vs champion's {h_val:.4f} "
                            f"({'within' if ok else 'drops more than'} the allowed {h_val - floor:.4f})"))
    failed = [c for c in checks if not c.passed]
    if failed:
        head = f"candidate v{cand_v} refused against champion v{champ_v}: "
        return verdict(False, head + "; ".join(c.detail for c in failed), checks)
    return verdict(True, f"candidate v{cand_v} {metric} {cand_m:.4f} >= champion v{champ_v} {champ_m:.4f}; "
                         f"no class or slice dropped more than allowed (tolerance {tol})", checks)


def _allowed_drop(tolerance: float, support: int) -> float:
    """The drop a class or slice check allows: the tolerance, or one example's worth if larger."""
    return max(tolerance, 1.0 / support) if support > 0 else tolerance


def load_gold(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> pd.DataFrame:
    """The gold examples (labeled, not discarded) with their input columns and ``label``."""
    from data_engine.mine.embedders.features import with_embedding
    from data_engine.ship.training import input_schema
    from data_engine.store.dataset import load_examples

    gold = load_examples(con, cfg.dataset, subset="gold")
    gold = gold[~gold["is_discarded"].astype(bool)].reset_index(drop=True)
    # The stored vectors of the embedding ride along, so models that read it do not re-embed.
    return with_embedding(con, cfg, gold, input_schema(con, cfg))[0] if len(gold) else gold


def predict_gold(home: Home, record: ModelRecord, gold: pd.DataFrame) -> np.ndarray:
    """Labels ``record`` (loaded sha256-checked) predicts for ``gold``; shape (N,), str."""
    if gold.empty:
        return np.array([], dtype=object)
    missing = [c for c in record.input_schema if c not in gold.columns]
    if missing:
        raise EngineError(f"model v{record.version} reads column {missing[0]!r}, which the gold data lacks")
    model = load_model(home, record)
    from data_engine.mine.embedders.features import model_inputs
    from data_engine.ship.training import limited_threads

    with limited_threads():
        return np.asarray(model.predict(gold[model_inputs(gold, record.input_schema)])).astype(str)


def evaluate_model(home: Home, record: ModelRecord, gold: pd.DataFrame, cfg: EngineConfig) -> Evaluation:
    """Load ``record`` (sha256-checked) and evaluate it on ``gold`` (from :func:`load_gold`)."""
    y_pred = predict_gold(home, record, gold)
    return evaluate_predictions(gold["label"].to_numpy() if len(gold) else np.array([]), y_pred, frame=gold,
                                slices=cfg.gate.slices, version=record.version)


def run_gate(
    con: duckdb.DuckDBPyConnection, home: Home, cfg: EngineConfig | None = None, version: int | None = None
) -> GateVerdict:
    """Evaluate a candidate (``version``, default the newest candidate) and the champion on gold; decide.

    Records the candidate's figures in ``models.metrics``; a refused candidate gets status ``refused``
    with the reason. Promotion itself is :func:`data_engine.ship.deploy.promote`.
    """
    cfg = cfg or home.config
    record = get_model(con, version) if version is not None else latest_candidate(con)
    if record is None:
        raise EngineError("no candidate model to evaluate; run `data-engine train` first")
    champion = current_champion(con)
    if champion is not None and champion.version == record.version:
        raise EngineError(f"model v{record.version} is already the champion")
    gold = load_gold(con, cfg)
    y_true = gold["label"].astype(str).to_numpy() if len(gold) else np.array([], dtype=object)
    cand_pred = predict_gold(home, record, gold)
    cand_eval = evaluate_predictions(y_true, cand_pred, frame=gold, slices=cfg.gate.slices, version=record.version)
    champ_eval = None
    wins = losses = None
    if champion is not None and len(gold):
        champ_pred = predict_gold(home, champion, gold)
        champ_eval = evaluate_predictions(y_true, champ_pred, frame=gold, slices=cfg.gate.slices,
                                          version=champion.version)
        wins = int(np.sum((cand_pred == y_true) & (champ_pred != y_true)))
        losses = int(np.sum((cand_pred != y_true) & (champ_pred == y_true)))
    verdict = replace(decide_promotion(cand_eval, champ_eval, cfg.gate), wins=wins, losses=losses)
    # The candidate's figures carry what they were compared with: a later deploy step checks that
    # the champion is still the one the gate saw.
    gate_info = {"champion_version": champion.version if champion else None, "promote": verdict.promote,
                 "metric": verdict.metric}
    record_metrics(con, record.version, {**cand_eval.to_dict(), "gate": gate_info})
    if champion is not None and champ_eval is not None:
        record_metrics(con, champion.version, champ_eval.to_dict())
    if verdict.promote:
        set_status(con, record.version, "candidate", PASSED_PREFIX + verdict.reason)
    else:
        set_status(con, record.version, "refused", verdict.reason)
    return verdict
