"""Annotator quality from their votes (cleanlab.multiannotator), refreshed after each pull."""

from __future__ import annotations

import duckdb
import pandas as pd

from data_engine.review.labelstudio.labeling import DISCARD_CHOICE
from data_engine.review.project import dataset_classes
from data_engine.store.config import EngineConfig
from data_engine.tasks import task_for


def _refresh_annotator_quality(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> None:
    """Per-annotator agreement with the consensus, and cleanlab's annotator quality where it applies."""
    votes = con.execute(
        "SELECT a.task_id, a.annotator, a.choice, t.suggested_label, t.suggested_score, v.label, v.is_discard "
        "FROM review_annotations a JOIN review_verdicts v ON v.task_id = a.task_id AND v.project_id = a.project_id "
        "AND v.source = 'consensus' "
        "JOIN review_tasks t ON t.task_id = a.task_id AND t.project_id = a.project_id").fetchdf()
    if votes.empty:
        return
    votes["consensus"] = [DISCARD_CHOICE if d else lbl for lbl, d in zip(votes["label"], votes["is_discard"], strict=True)]
    task = task_for(cfg.dataset)
    if task.has_classes:
        votes["agrees"] = votes["choice"] == votes["consensus"]
    else:  # numbers agree within the task's tolerance (Task.agreement), not only when equal
        votes["agrees"] = [task.agreement([c], v) > 0 for c, v in zip(votes["choice"], votes["consensus"], strict=True)]
    stats = votes.groupby("annotator").agg(n_votes=("agrees", "size"), agreement=("agrees", "mean")).reset_index()
    # CROWDLAB scores annotators over classes; numbers keep the agreement only.
    quality = _cleanlab_quality(votes, dataset_classes(con, cfg)) if task.has_classes else {}
    stats["quality"] = stats["annotator"].map(quality)
    con.register("_quality", stats)
    try:
        con.execute("DELETE FROM review_annotator_quality")
        con.execute("INSERT INTO review_annotator_quality (annotator, n_votes, agreement, quality) "
                    "SELECT annotator, n_votes, agreement, quality FROM _quality")
    finally:
        con.unregister("_quality")


def _cleanlab_quality(votes: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    """cleanlab's CROWDLAB annotator quality, with the model's suggestion as the class probabilities.

    Each task's probabilities put ``suggested_score`` on the suggested class and spread the rest
    evenly. Returns {} when cleanlab cannot score this set (e.g. too few overlapping votes).
    """
    import warnings

    import numpy as np

    choices = [*classes, DISCARD_CHOICE]
    index = {c: i for i, c in enumerate(choices)}
    wide = votes.pivot_table(index="task_id", columns="annotator", values="choice", aggfunc="last")
    labels = wide.apply(lambda s: s.map(index)).astype(float)
    per_task = votes.drop_duplicates("task_id").set_index("task_id").loc[wide.index]
    k = len(choices)
    probs = np.full((len(wide), k), 0.0)
    for i, (sug, score) in enumerate(zip(per_task["suggested_label"], per_task["suggested_score"], strict=True)):
        p = float(score) if score is not None and not pd.isna(score) else 1.0 / k
        p = min(max(p, 1.0 / k), 0.99)
        probs[i, :] = (1 - p) / (k - 1)
        if sug in index:
            probs[i, index[sug]] = p
        probs[i] /= probs[i].sum()
    try:
        from cleanlab.multiannotator import get_label_quality_multiannotator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = get_label_quality_multiannotator(labels, probs, verbose=False)
        quality = out["annotator_stats"]["annotator_quality"]
        return {str(name): round(float(q), 4) for name, q in quality.items()}
    except Exception:  # noqa: BLE001 - quality is optional: agreement is always stored
        return {}
