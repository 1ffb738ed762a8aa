"""Single-label metrics and the gate's tests: accuracy and macro-F1 (scikit-learn), McNemar's exact
test of accuracy and the paired bootstrap of macro-F1 (:mod:`data_engine.tasks.paired`), each gold
class's recall and its test."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy loads when a figure is computed: ingest's start-up stays light
    import numpy as np

    from data_engine.tasks.paired import PairedDiff


def class_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float | None]:
    """Accuracy and macro-F1 over the classes in gold (a class the gold set lacks says nothing
    about the model), by scikit-learn."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    y_true = np.asarray(y_true, dtype=object).astype(str)
    pred = np.asarray(pred, dtype=object).astype(str)
    if len(y_true) == 0:
        return {"accuracy": None, "macro_f1": None}
    return {"accuracy": float(accuracy_score(y_true, pred)),
            "macro_f1": float(f1_score(y_true, pred, labels=sorted(set(y_true)), average="macro",
                                       zero_division=0))}


def paired_class_test(y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                      alpha: float) -> PairedDiff:
    """Accuracy: McNemar's exact test; macro-F1: the paired bootstrap (:mod:`data_engine.tasks.paired`).
    ``metric`` is checked by the caller (:meth:`~data_engine.tasks.base.Task.check_metric`)."""
    import numpy as np
    from data_engine.tasks.paired import bootstrap_macro_f1, mcnemar

    y, cand, champ = (np.asarray(a).astype(str) for a in (y_true, cand_pred, champ_pred))
    if metric == "accuracy":
        return mcnemar(cand == y, champ == y, alpha=alpha)
    return bootstrap_macro_f1(y, cand, champ, alpha=alpha)


def candidate_figures(y: np.ndarray, pred: np.ndarray) -> tuple[dict[str, float | None], tuple[float, ...]]:
    """Accuracy and macro-F1 of the most probable class, over all K classes (a class without
    labels counts with F1 0 for every candidate alike), and each class's recall (scikit-learn)."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    y = np.asarray(y, dtype=np.int64)
    best = pred.argmax(axis=1)
    every = np.arange(pred.shape[1])
    recall = recall_score(y, best, average=None, labels=every, zero_division=0)
    return ({"accuracy": float(accuracy_score(y, best)),
             "macro_f1": float(f1_score(y, best, average="macro", labels=every, zero_division=0))},
            tuple(float(r) for r in recall))


def class_recall(y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
    """Recall of each class in gold (scikit-learn's ``recall_score``) with its gold support."""
    import numpy as np
    from sklearn.metrics import recall_score

    y_true = np.asarray(y_true, dtype=object).astype(str)
    pred = np.asarray(pred, dtype=object).astype(str)
    if len(y_true) == 0:
        return {}
    present = sorted({str(v) for v in y_true})
    recalls = recall_score(y_true, pred, labels=present, average=None, zero_division=0)
    return {c: (float(r), int(np.sum(y_true == c))) for c, r in zip(present, recalls)}


def class_tests(y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, *,
                alpha: float) -> list[tuple[str, str, PairedDiff]]:
    """McNemar's exact test of each gold class's recall, on that class's gold examples."""
    import numpy as np
    from data_engine.tasks.paired import mcnemar

    y, cand, champ = (np.asarray(a).astype(str) for a in (y_true, cand_pred, champ_pred))
    return [(f"recall {cls}", f"recall of class {cls!r}", mcnemar(cand[y == cls] == cls, champ[y == cls] == cls,
                                                                    alpha=alpha))
            for cls in sorted(set(y.tolist()))]
