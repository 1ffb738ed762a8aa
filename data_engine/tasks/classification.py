"""Single-label classification: one class per example, the engine's first task plug-in.

A label is one class name, stored and compared in the normalised spelling of
:mod:`data_engine.store.values` (so "1.0" and 1, or "cat " and "cat", are one label); a label that is
not one of ``dataset_classes`` is quarantined with the classes named. A reviewer picks one class (or
"not a valid example") from single-choice radio buttons with the model's suggestion pre-filled.
Out-of-sample predictions are K class probabilities; confident learning finds the label errors
(:mod:`~data_engine.tasks.classification_issues`); the gate compares accuracy (McNemar) or macro-F1
(paired bootstrap) (:mod:`~data_engine.tasks.classification_metrics`).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_engine.store.values import normalize_text, normalized_sql
from data_engine.tasks.base import TASKS, LabelIssues, Task
from data_engine.tasks.review_views import choices_view

if TYPE_CHECKING:  # numpy and pandas load when a method runs: ingest's start-up stays light
    import duckdb
    import numpy as np
    import pandas as pd

    from data_engine.compute.backend import Backend
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks.oof import OOFResult
    from data_engine.tasks.paired import PairedDiff

# Row sums of probabilities may differ from 1 by this much (float rounding in a user's export).
SUM_TOLERANCE = 1e-3


def aligned_probabilities(model: object, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
    """``model.predict_proba(X)`` with columns in ``classes`` order, shape (N, K); absent classes get 0.

    The model's ``classes_`` are matched by their text (a served model learned class names).
    """
    import numpy as np

    raw = np.asarray(model.predict_proba(X), dtype=float)
    out = np.zeros((len(X), len(classes)), dtype=float)
    index = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(getattr(model, "classes_")):
        if str(c) in index:
            out[:, index[str(c)]] = raw[:, j]
    return out


def margins(probs: np.ndarray) -> np.ndarray:
    """Top-1 minus top-2 probability per row of ``probs`` (N, K); shape (N,), in [0, 1]."""
    import numpy as np

    if probs.shape[1] < 2:
        return np.ones(len(probs))
    top2 = np.sort(probs, axis=1)[:, -2:]
    return np.clip(top2[:, 1] - top2[:, 0], 0.0, 1.0)


@TASKS.register
class Classification(Task):
    """One class per example (``[dataset] task = "classification"``, the default)."""

    name = "classification"
    has_classes = True
    detectors = None  # every detector judges one class per example
    estimator_kind = "classifier"
    default_metric = "accuracy"
    few_label_values = True

    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """The configured classes, or the batch's distinct labels in natural order (at least two)."""
        from data_engine.store.schema import fix_classes

        return fix_classes(con, ds, batch_id, label_present)

    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Class indices, shape (n,) int64."""
        import numpy as np

        index = {c: i for i, c in enumerate(classes)}
        codes = np.fromiter((index.get(str(v), -1) for v in labels), dtype=np.int64, count=len(labels))
        if (codes < 0).any():
            bad = labels[int(np.flatnonzero(codes < 0)[0])]
            raise ValueError(f"label {bad!r} is not one of the dataset's classes ({', '.join(classes)})")
        return codes

    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """Class names of indices ``y`` (n,)."""
        import numpy as np

        return [str(v) for v in np.asarray(list(classes), dtype=object)[np.asarray(y, dtype=np.int64)]]

    def prediction_width(self, classes: Sequence[str]) -> int:
        """K class probabilities."""
        return len(classes)

    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """The class names."""
        return [str(c) for c in classes]

    def prediction_problem(self, pred: np.ndarray) -> tuple[int, int | None, str] | None:
        """Each value a probability in [0, 1], each row summing to 1 (within :data:`SUM_TOLERANCE`)."""
        import numpy as np

        bad = ~np.isfinite(pred) | (pred < 0) | (pred > 1)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            return int(r), int(c), "is not a probability in [0, 1]"
        sums = pred.sum(axis=1)
        off = np.abs(sums - 1.0) > SUM_TOLERANCE
        if off.any():
            r = int(np.flatnonzero(off)[0])
            return r, None, f"probabilities sum to {sums[r]:.4f}, not 1"
        return None

    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """The classifiers as they are."""
        return dict(members)

    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Stratified K-fold (:func:`data_engine.tasks.oof.assign_folds`); warns of rare classes."""
        import numpy as np
        from data_engine.tasks.oof import assign_folds

        return assign_folds(np.asarray(y, dtype=np.int64), len(classes), folds=folds, seed=seed)

    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Convex weights maximising the given labels' out-of-fold likelihood
        (:func:`data_engine.tasks.oof.mixture_weights`), and the weighted mean of the probabilities."""
        import numpy as np
        from data_engine.tasks.oof import mixture_weights

        names = list(member_preds)
        stacked = np.stack([member_preds[m] for m in names])
        w = mixture_weights(stacked, np.asarray(y, dtype=np.int64))
        return np.tensordot(w, stacked, axes=1), {m: float(v) for m, v in zip(names, w)}

    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Stratified K-fold probabilities of every member on the same folds, mixed by the weights
        that maximise the given labels' likelihood (:func:`data_engine.tasks.oof.ensemble_out_of_fold_probabilities`)."""
        from data_engine.tasks.oof import ensemble_out_of_fold_probabilities

        return ensemble_out_of_fold_probabilities(members, X, y, len(classes), folds=folds, seed=seed,
                                                  n_jobs=n_jobs, compute=compute)

    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """``predict_proba`` in ``classes`` order: a model fitted on class indices by them, one fitted on
        class names by name (:func:`aligned_probabilities`)."""
        import numpy as np

        learned = np.asarray(getattr(model, "classes_"))
        if learned.dtype.kind in "iu":
            raw = np.asarray(model.predict_proba(X), dtype=float)
            out = np.zeros((len(X), len(classes)), dtype=float)
            out[:, learned.astype(int)] = raw
            return out
        return aligned_probabilities(model, X, classes)

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The most probable class and its probability."""
        import numpy as np

        if not len(pred):
            return [], np.array([], dtype=float)
        return self.decode(pred.argmax(axis=1), classes), pred.max(axis=1)

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """Confident learning plus labels the model plainly contradicts
        (:func:`data_engine.tasks.classification_issues.find_class_issues`)."""
        from data_engine.tasks.classification_issues import find_class_issues

        return find_class_issues(y, pred, classes, self.decode)

    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """1 - the margin between the two most likely classes (margin sampling)."""
        import numpy as np

        return 1.0 - margins(pred) if len(pred) else np.array([])

    def certainty(self, pred: np.ndarray) -> np.ndarray:
        """The margin between the two most likely classes (:func:`margins`)."""
        import numpy as np

        return margins(pred) if len(pred) else np.array([])

    def label_sql(self, cell: str, plain: bool) -> str:
        """The class in its normalised spelling; '' reads as unlabeled."""
        return f"nullif({cell if plain else normalized_sql(cell)}, '')"

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """A label outside the fixed classes is quarantined, the classes named (first 200 characters)."""
        if not classes_known:
            return []
        return [(
            f"{label} IS NOT NULL AND {label} NOT IN (SELECT class_label FROM dataset_classes)",
            f"'label ' || left({label}, 40) || ' is not one of the classes (' || "
            "(SELECT left(string_agg(class_label, ', ' ORDER BY position), 200) FROM dataset_classes) || ')'",
        )]

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """Single-choice radio buttons: the classes, then ``discard``; the given label, the model's
        suggestion and the issue types in header lines (task data fields of the review stage)."""
        return choices_view(
            item, partner, [*classes, discard], from_name=from_name, to_name=to_name, partner_prefix=partner_prefix,
            mode='choice="single-radio" showInLine="true" required="true"',
            headers=['<Header value="Given label: $given_label  |  model suggests: $suggested_label ($suggested_score)" size="4"/>',
                     '<Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale)" size="5"/>'])

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """The choice ``label`` selected."""
        return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The choice picked in ``from_name`` (None when nothing was chosen)."""
        for region in result or ():
            if not isinstance(region, Mapping):
                continue
            if region.get("from_name") == from_name and region.get("type") == "choices":
                value = region.get("value")
                picked = value.get("choices") if isinstance(value, Mapping) else None
                # Only a list of text is a choice; anything else (a bare string, nested objects) is none.
                if isinstance(picked, list) and picked and isinstance(picked[0], str):
                    return picked[0]
        return None

    def consensus(self, labels: Sequence[str]) -> str | None:
        """The majority answer (cleanlab.multiannotator's majority vote); a tie for the most votes is None."""
        if not labels:
            return None
        top = Counter(labels).most_common()
        if len(top) > 1 and top[0][1] == top[1][1]:
            return None
        import pandas as pd
        from cleanlab.multiannotator import get_majority_vote_label

        answers = sorted(set(labels))
        # One example, one column per answer given: cleanlab's vote over the answers' indices.
        matrix = pd.DataFrame([[answers.index(v) for v in labels]], columns=range(len(labels)), dtype=float)
        return answers[int(get_majority_vote_label(matrix, verbose=False)[0])]

    def oracle_label(self, value: Any) -> str:
        """A text or a number, in the normalised spelling (the JSON number 7 and "7.0" are the class 7)."""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            shown = "missing" if value is None else f"{type(value).__name__} {json.dumps(value)[:40]}"
            raise ValueError(f"is {shown}; a text or a number is needed")
        text = normalize_text(str(value))
        if not text:
            raise ValueError("is empty")
        return text

    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """Another class, uniformly."""
        return rng.choice([c for c in classes if c != truth])

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, float | None]:
        """Accuracy and macro-F1 over the classes in gold
        (:func:`data_engine.tasks.classification_metrics.class_metrics`)."""
        from data_engine.tasks.classification_metrics import class_metrics

        return class_metrics(y_true, pred)

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """Accuracy: McNemar's exact test; macro-F1: the paired bootstrap
        (:func:`data_engine.tasks.classification_metrics.paired_class_test`).
        Raises ``ValueError`` for any other ``metric``."""
        from data_engine.tasks.classification_metrics import paired_class_test

        self.check_metric(metric)
        return paired_class_test(y_true, cand_pred, champ_pred, metric, alpha=alpha)

    def candidate_figures(self, y: np.ndarray, pred: np.ndarray,
                          classes: Sequence[str]) -> tuple[dict[str, float | None], tuple[float, ...]]:
        """Accuracy, macro-F1 and each class's recall of the most probable class, over all K classes
        (:func:`data_engine.tasks.classification_metrics.candidate_figures`)."""
        from data_engine.tasks.classification_metrics import candidate_figures

        return candidate_figures(y, pred)

    def class_recall(self, y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
        """Recall of each class in gold with its gold support
        (:func:`data_engine.tasks.classification_metrics.class_recall`)."""
        from data_engine.tasks.classification_metrics import class_recall

        return class_recall(y_true, pred)

    def class_tests(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, *,
                    alpha: float) -> list[tuple[str, str, PairedDiff]]:
        """McNemar's exact test of each gold class's recall
        (:func:`data_engine.tasks.classification_metrics.class_tests`)."""
        from data_engine.tasks.classification_metrics import class_tests

        return class_tests(y_true, cand_pred, champ_pred, alpha=alpha)

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """The most probable class and every class's probability (6 decimals)."""
        import numpy as np

        return {"label": str(classes[int(np.argmax(pred_row))]),
                "probabilities": dict(zip(classes, np.round(pred_row, 6).tolist()))}

    def predict_fields(self) -> dict[str, Any] | None:
        """A class name and a probability per class."""
        return {"label": str, "probabilities": dict[str, float]}

    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predicted_label`` (the most probable class, as the model server answers), ``predicted_score``
        and one ``p_<class>`` column per class, in ``classes`` order."""
        import numpy as np

        labels, scores = self.best(pred, classes)
        out = {"predicted_label": np.asarray(labels, dtype=object), "predicted_score": scores}
        for j, c in enumerate(classes):
            out[f"p_{c}"] = pred[:, j]
        return out

    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``accuracy``, ``macro_f1``, ``per_class_recall``, ``n`` and ``per_class_support``."""
        return {"accuracy": figures.get("accuracy"), "macro_f1": figures.get("macro_f1"),
                "per_class_recall": figures.get("per_class_recall", {}), "n": n,
                "per_class_support": figures.get("per_class_support", {})}

    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """Accuracy and macro-F1, then each class's recall with its support."""
        support = figures.get("per_class_support", {})
        return (f"accuracy {figures['accuracy']:.4f}, macro-F1 {figures['macro_f1']:.4f}",
                [f"  recall {cls}: {recall:.4f} (of {support.get(cls, 0)})"
                 for cls, recall in figures.get("per_class_recall", {}).items()])
