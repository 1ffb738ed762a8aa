"""Regression: one number per example (a price, a rating, a duration, a sensor reading).

A label is a number stored in one canonical text spelling (:mod:`data_engine.tasks.regression_values`:
``"3"``, ``"3.00"`` and ``"3e0"`` are the label ``"3.0"``), read with the numeric features' rules
(missing-value markers, no guessing at thousands separators or decimal commas); an impossible value
(outside ``[dataset] label_range``) is quarantined with the reason. There are no classes.

Out-of-fold predictions are a value and an interval per example, ``(prediction, lower, upper)``, from
the modality's regressors mixed by their out-of-fold error (:mod:`data_engine.tasks.regression_oof`);
cleanlab's regression label quality scores rank the labels, and a given value beyond two robust
standard deviations of its prediction is flagged (:mod:`data_engine.tasks.regression_issues`). A
reviewer sees the given value, the prediction and its interval, and answers in a ``<Number>`` field
pre-filled with the prediction, or picks "not a valid example"
(:mod:`data_engine.tasks.regression_review`). The gate compares MAE (Wilcoxon
signed-rank on the per-example absolute errors), RMSE or R² (paired bootstrap): :mod:`data_engine.tasks.regression_metrics`.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_engine.errors import EngineError
from data_engine.tasks import regression_review, regression_values
from data_engine.tasks.base import TASKS, LabelIssues, Task

if TYPE_CHECKING:  # numpy and pandas load when a method runs: ingest's start-up stays light
    import duckdb
    import numpy as np
    import pandas as pd

    from data_engine.compute.backend import Backend
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks.oof import OOFResult
    from data_engine.tasks.paired import PairedDiff

log = logging.getLogger(__name__)

# Decimals shown and suggested: the labels' own precision, at most this many.
MAX_DECIMALS = 6
# The detectors that judge a number: "uncertain" and "class_imbalance" speak of classes.
REGRESSION_DETECTORS = frozenset({"label", "outlier", "near_duplicate", "lookalike"})


def _numbers(values: Any) -> np.ndarray:
    """``values`` (n,) stored labels or numbers, or (n, 3) predictions, as the (n,) float values."""
    import numpy as np

    arr = np.asarray(values)
    if arr.ndim == 2:
        arr = arr[:, 0]
    return arr.astype(np.float64) if arr.dtype.kind in "fiu" else np.array([float(v) for v in arr], dtype=np.float64)


def decimals_of(labels: Sequence[str]) -> int:
    """The most decimals any stored label spells (``"3.25"`` -> 2; ``"1e-05"`` -> 5), capped at
    :data:`MAX_DECIMALS`: suggestions are rounded to the precision the data are written in."""
    most = 0
    for text in labels:
        mantissa, _, exponent = str(text).lower().partition("e")
        frac = mantissa.partition(".")[2].rstrip("0")
        most = max(most, len(frac) - (int(exponent) if exponent else 0))
    return int(min(max(most, 0), MAX_DECIMALS))


def _show(value: float, decimals: int) -> str:
    """A number for people: rounded to ``decimals``, no trailing zeros."""
    text = f"{value:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


@TASKS.register
class Regression(Task):
    """One number per example (``[dataset] task = "regression"``)."""

    name = "regression"
    has_classes = False
    column_labels = "number"
    detectors = REGRESSION_DETECTORS
    estimator_kind = "regressor"
    default_metric = "mae"
    baseline_kind = "mean"  # a first model must beat predicting the training mean (tasks.baseline)
    # The budget split's figure: labels inside the out-of-fold interval (:meth:`oof_share`); no model stores it.
    share_points = "points of labels within the interval"
    share_metric = None
    reviews_past_flags = True  # a fixed 2-sd flag cut-off (regression_issues): spare reviews go down the ranking

    @property
    def label_range(self) -> tuple[float, ...] | None:
        """``[dataset] label_range`` (None: any finite number)."""
        return self.ds.label_range if self.ds is not None else None

    # -- ingest -------------------------------------------------------------------------------------

    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """None: a number is not one of a fixed set of values."""
        return []

    def label_sql(self, cell: str, plain: bool) -> str:
        """The number's canonical spelling; text that is not a number is kept for its quarantine reason."""
        return regression_values.label_sql(cell)

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """Not a finite number (thousands separator, decimal comma named), beyond float32, outside ``label_range``."""
        return regression_values.label_reasons(label, self.label_range)

    # -- labels as arrays ---------------------------------------------------------------------------

    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """The numbers, shape (n,) float64. Raises ValueError naming the first label that is not a finite number."""
        import numpy as np

        out = np.empty(len(labels), dtype=np.float64)
        for i, v in enumerate(labels):
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"label {v!r} is not a number") from None
            if not math.isfinite(out[i]):
                raise ValueError(f"label {v!r} is not a finite number")
        return out

    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """The canonical spelling of each number of ``y`` (n,) (or of the predictions' first column)."""
        return [regression_values.canonical_number(v) for v in _numbers(y)]

    # -- out-of-sample predictions ------------------------------------------------------------------

    def prediction_width(self, classes: Sequence[str]) -> int:
        """A value and its interval: 3."""
        return 3

    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """``prediction``, ``lower``, ``upper``."""
        return ["prediction", "lower", "upper"]

    def prediction_problem(self, pred: np.ndarray) -> tuple[int, int | None, str] | None:
        """Every number finite, and each row's ``lower <= prediction <= upper``."""
        import numpy as np

        found = super().prediction_problem(pred)
        if found is not None:
            return found
        off = (pred[:, 1] > pred[:, 0]) | (pred[:, 0] > pred[:, 2])
        if off.any():
            r = int(np.flatnonzero(off)[0])
            return r, None, f"the interval [{pred[r, 1]:g}, {pred[r, 2]:g}] does not hold the prediction {pred[r, 0]:g}"
        return None

    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """Each member's feature steps with the regressor of its family as the final step; a member
        without one (naive Bayes) is left out with a log line
        (:func:`data_engine.tasks.regression_members.regressor_members`)."""
        from data_engine.tasks.regression_members import regressor_members

        kept, dropped = regressor_members(members)
        if dropped:
            log.info("model members without a regression form left out: %s", ", ".join(dropped))
        return kept

    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Shuffled K-fold (no classes to stratify by); no rare classes."""
        from data_engine.tasks.regression_oof import assign_regression_folds

        fold_of, n_folds = assign_regression_folds(len(y), folds=folds, seed=seed)
        return fold_of, n_folds, ()

    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The members' values (column 0 of each (n, 3)) weighted by inverse squared out-of-fold MAE,
        with the robust residual interval (:func:`data_engine.tasks.regression_oof.mix_predictions`)."""
        import numpy as np

        from data_engine.tasks.regression_oof import mix_predictions

        names = list(member_preds)
        values = np.stack([np.asarray(member_preds[m], dtype=np.float64).reshape(len(y), -1)[:, 0] for m in names])
        pred, w = mix_predictions(values, _numbers(y))
        return pred, {name: float(v) for name, v in zip(names, w)}

    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Shuffled K-fold predictions of every regressor, mixed by inverse squared out-of-fold MAE, with
        a robust residual interval (:func:`data_engine.tasks.regression_oof.regression_out_of_fold`)."""
        from data_engine.tasks.regression_oof import regression_out_of_fold

        return regression_out_of_fold(members, X, y, folds=folds, seed=seed, n_jobs=n_jobs, compute=compute)

    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """``(prediction, lower, upper)``, shape (n, 3): the model's value and the interval its
        training left on it (``model.interval_`` = the (lower, upper) offsets of its out-of-fold
        residuals, set by :class:`data_engine.tasks.regression_model.IntervalRegressor`; ±0 without it)."""
        import numpy as np

        value = np.asarray(model.predict(X), dtype=np.float64).reshape(-1)
        low, high = getattr(model, "interval_", (0.0, 0.0))
        return np.column_stack([value, value + low, value + high])

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The predicted value (6 significant digits, canonical spelling: a reviewer reads 152.837, not
        152.83746152) and a confidence in [0, 1]: 1 - :meth:`uncertainty`."""
        import numpy as np

        if not len(pred):
            return [], np.array([], dtype=float)
        values = [float(f"{v:.6g}") for v in _numbers(pred)]
        return self.decode(np.asarray(values), classes), 1.0 - self.uncertainty(pred)

    # -- mining -------------------------------------------------------------------------------------

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """cleanlab's regression label quality scores (``cleanlab.regression.rank``) and the flag rule of
        :mod:`data_engine.tasks.regression_issues` (the given value beyond two robust standard
        deviations of its out-of-fold prediction). ``pred``: (n, 3); suggestions rounded to the labels' precision."""
        import numpy as np

        from data_engine.tasks.regression_issues import FLAG_Z, flag_errors, label_quality_scores
        from data_engine.tasks.regression_oof import INTERVAL_COVERAGE, robust_scale

        y = _numbers(y)
        pred = np.asarray(pred, dtype=np.float64)
        if len(y) < 2:
            return LabelIssues.none("needs at least two labeled examples")
        scores = label_quality_scores(y, pred[:, 0])
        flags = flag_errors(y, pred)
        given = self.decode(y, classes)
        places = decimals_of(given)
        suggested = [regression_values.canonical_number(round(float(v), places)) for v in pred[:, 0]]
        detail = [f"given {_show(g, places)}, predicted {_show(p, places)} "
                  f"[{_show(lo, places)}, {_show(hi, places)}]" if flag else "value agrees with the model"
                  for g, (p, lo, hi), flag in zip(y, pred, flags)]
        summary = {"examples": int(len(y)), "flagged": int(flags.sum()), "flag_rule": f"|residual| > {FLAG_Z:g} robust sd",
                   "interval_coverage": INTERVAL_COVERAGE, "residual_scale": robust_scale(y - pred[:, 0])}
        return LabelIssues(scores, flags, suggested, 1.0 - self.uncertainty(pred), detail, summary)

    def example_correct(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> np.ndarray:
        """Whether each example's absolute error ``|y - prediction|`` is at most the median absolute
        error of the n examples, shape (n,) bool: a slice whose errors run large has a share of
        "right" rows far below the rest's (about one half). ``y``: (n,) numbers; ``pred``: (n, 3)."""
        import numpy as np

        if not len(pred):
            return np.zeros(0, dtype=bool)
        err = np.abs(np.asarray(y, dtype=float) - np.asarray(pred, dtype=float)[:, 0])
        ok = np.isfinite(err)
        return ok & (err <= (np.median(err[ok]) if ok.any() else 0.0))

    def oof_share(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> float:
        """Share in [0, 1] of the labels inside their out-of-fold interval ``[lower, upper]`` (``pred``: (n, 3)
        = prediction, lower, upper; the nominal coverage is 90 %), over rows with finite values; 0.5 when none.

        Why this and not :meth:`example_correct` ("error at most the median error", about 0.5 by construction)
        nor an argmax over the three columns (meaningless, near 0): the budget split's power-law prior needs a
        share of examples the model gets right whose complement falls as more labels come; a label the interval
        misses is one the model gets wrong at its own stated certainty, a figure in [0, 1] like accuracy."""
        import numpy as np

        y = np.asarray(y, dtype=float)
        pred = np.asarray(pred, dtype=float)
        ok = np.isfinite(pred).all(axis=1) & np.isfinite(y) if len(pred) else np.zeros(0, dtype=bool)
        if not ok.any():
            return 0.5
        return float(((y[ok] >= pred[ok, 1]) & (y[ok] <= pred[ok, 2])).mean())

    def selection_uncertainty(self, pred: np.ndarray, method: str = "margin_sampling") -> np.ndarray:
        """A value with its interval has no class distribution: every ``method`` ranks by the
        interval's relative width (:meth:`uncertainty`). ``pred``: (n, 3); shape (n,)."""
        return self.uncertainty(pred)

    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """Each interval's half-width ``h`` relative to the typical one, ``h / (h + median(h))``: in [0, 1),
        0.5 for a typical example, higher = less sure. ``pred``: (n, 3)."""
        import numpy as np

        if not len(pred):
            return np.array([])
        half = np.maximum((np.asarray(pred)[:, 2] - np.asarray(pred)[:, 1]) / 2, 0.0)
        typical = float(np.median(half))
        if typical <= 0:
            return np.where(half > 0, 1.0, 0.0)
        return half / (half + typical)

    # -- review -------------------------------------------------------------------------------------

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """A ``<Number>`` answer pre-filled with the prediction, a "not a valid example" choice, and header
        lines with the given value and the prediction (:func:`regression_review.labeling_config`)."""
        return regression_review.labeling_config(item, partner, from_name=from_name, to_name=to_name, discard=discard,
                                                 partner_prefix=partner_prefix, label_range=self.label_range)

    @staticmethod
    def discard_control(from_name: str) -> str:
        """The name of the "not a valid example" choice beside the ``<Number>`` answer ``from_name``."""
        return regression_review.discard_control(from_name)

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """The number ``label`` in the ``<Number>``, or the discard choice (:func:`regression_review.prediction_result`)."""
        return regression_review.prediction_result(label, from_name=from_name, to_name=to_name)

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The discard choice or the number typed, canonical (:func:`regression_review.answer_label`)."""
        return regression_review.answer_label(result, from_name=from_name)

    def answer_problem(self, label: str, choices: Sequence[str]) -> str | None:
        """A finite number (within ``[dataset] label_range`` when set) or the discard answer (in ``choices``)."""
        if label in choices:
            return None
        try:
            value = float(regression_values.canonical_number(label))
        except EngineError:
            return f"{label[:40]!r} is not a number"
        if self.label_range is not None and not self.label_range[0] <= value <= self.label_range[1]:
            lo, hi = self.label_range
            return f"{label[:40]} is outside [dataset] label_range [{lo:g}, {hi:g}]"
        return None

    def consensus(self, labels: Sequence[str]) -> str | None:
        """The reviewers' median number when they agree, else None (:func:`regression_review.consensus`)."""
        return regression_review.consensus(labels)

    def agreement(self, labels: Sequence[str], verdict: str) -> float:
        """The share of ``labels`` near ``verdict`` (:func:`regression_review.agreement`)."""
        return regression_review.agreement(labels, verdict)

    def oracle_label(self, value: Any) -> str:
        """A JSON number or a numeric text, in the canonical spelling. Raises ValueError otherwise."""
        try:
            return regression_values.canonical_number(value)
        except EngineError as exc:
            raise ValueError(str(exc)) from None

    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """A slip of a simulated reviewer: the true value off by 10-50 % (either way), or by 1 when it is 0."""
        value = float(truth)
        off = rng.uniform(0.1, 0.5) * rng.choice((-1.0, 1.0))
        return regression_values.canonical_number(value * (1 + off) if value else off / abs(off))

    # -- ship ---------------------------------------------------------------------------------------

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
        """MAE, RMSE and R² (scikit-learn) of ``pred`` ((n,) values or (n, 3) predictions) against ``y_true`` (n,)."""
        from data_engine.tasks.regression_metrics import regression_metrics

        return regression_metrics(_numbers(y_true), _numbers(pred))

    def higher_is_better(self, metric: str) -> bool:
        """R² is a score; MAE and RMSE are errors."""
        from data_engine.tasks.regression_metrics import LOWER_IS_BETTER

        return metric not in LOWER_IS_BETTER

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """MAE: Wilcoxon signed-rank on per-example absolute errors; RMSE, R²: paired bootstrap
        (:func:`data_engine.tasks.regression_metrics.paired_regression_test`)."""
        self.check_metric(metric)
        from data_engine.tasks.regression_metrics import paired_regression_test

        return paired_regression_test(_numbers(y_true), _numbers(cand_pred), _numbers(champ_pred), metric, alpha=alpha)

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``{"value", "lower", "upper", "coverage"}``: the prediction and its interval (6 significant digits)."""
        import numpy as np
        from data_engine.tasks.regression_oof import INTERVAL_COVERAGE

        value, low, high = (float(f"{v:.6g}") for v in np.asarray(pred_row, dtype=np.float64)[:3])
        return {"value": value, "lower": low, "upper": high, "coverage": INTERVAL_COVERAGE}

    def predict_fields(self) -> dict[str, Any] | None:
        """The value, the interval's bounds and its nominal coverage."""
        return {"value": float, "lower": float, "upper": float, "coverage": float}

    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predicted_value``, ``lower``, ``upper``."""
        import numpy as np

        pred = np.asarray(pred, dtype=np.float64)
        return {"predicted_value": pred[:, 0], "lower": pred[:, 1], "upper": pred[:, 2]}

    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``{"mae", "rmse", "r2", "n"}``."""
        return {"mae": figures.get("mae"), "rmse": figures.get("rmse"), "r2": figures.get("r2"), "n": n}

    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """MAE, RMSE and R² on one line."""
        r2 = figures.get("r2")
        return (f"MAE {figures['mae']:.4g}, RMSE {figures['rmse']:.4g}, R² "
                + (f"{r2:.4f}" if r2 is not None else "n/a"), [])

