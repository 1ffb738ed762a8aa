"""How a detection benchmark scores flags against the injected errors, for every task's ``bench detect``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from data_engine.store.home import Home

# cleanlab's own call, the baseline beside the engine, runs on this many folds.
BASELINE_FOLDS = 5


def detection_scores(truth: pd.Series, flagged: set[str], queue_ids: list[str]) -> dict[str, float]:
    """Precision, recall, F1 of ``flagged`` against ``truth`` (bool per example id) and the
    precision of the first k queue entries, k = the number of truly wrong labels."""
    import pandas as pd

    wrong = set(truth.index[truth.to_numpy()])
    hits = len(wrong & flagged)
    precision = hits / len(flagged) if flagged else 0.0
    recall = hits / len(wrong) if wrong else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    k = len(wrong)
    top_hits = int(pd.Series(queue_ids[:k], dtype=object).isin(wrong).sum())
    return {"precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4),
            "flagged": len(flagged), "top_k": k, "top_k_precision": round(top_hits / k, 4) if k else 0.0,
            "queue_length": len(queue_ids)}


def flag_line(name: str, scores: dict[str, float], *, width: int = 28, indent: str = "") -> str:
    """One text line of :func:`detection_scores`' figures ``scores``, after ``name`` padded to ``width``
    characters and ``indent``: the line every task's ``bench detect`` prints per arm."""
    s = scores
    return (f"{indent}{name:<{width}} precision {s['precision']:.3f}  recall {s['recall']:.3f}  F1 {s['f1']:.3f}  "
            f"flagged {s['flagged']}  top-{s['top_k']} precision {s['top_k_precision']:.3f}")


def label_flag_scores(con: duckdb.DuckDBPyConnection, run_id: int, truth: pd.Series) -> dict[str, float]:
    """:func:`detection_scores` of mining run ``run_id``'s label issues: the flagged examples, and the
    ranking by label quality score (lowest first) in place of the queue, so a task whose queue also
    holds other issue kinds is scored on its label check alone."""
    flagged = {r[0] for r in con.execute(
        "SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' AND is_issue", [run_id]).fetchall()}
    ranked = [r[0] for r in con.execute(
        "SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' ORDER BY score, example_id",
        [run_id]).fetchall()]
    return detection_scores(truth, flagged, ranked)


def mine_landed_frame(home: Home, frame: pd.DataFrame, name: str, truth: pd.Series) -> dict[str, Any]:
    """Land ``frame`` (one row per example, the home's id and label columns included) as the CSV file
    ``name`` in ``home``'s landing folder, ingest it and run one mining step (the loop's own steps), and
    score the run's label flags against ``truth`` (:func:`label_flag_scores`), with the run's
    ``model_spec`` and the ``seconds`` of ingest and mining together."""
    import time

    from data_engine.steps import ingest, mine_step
    from data_engine.store.warehouse import open_warehouse

    path = home.landing / name
    frame.to_csv(path, index=False)
    started = time.perf_counter()
    with open_warehouse(home) as con:
        ingest(con, home, path)
    mined = mine_step(home)
    with open_warehouse(home) as con:
        engine: dict[str, Any] = label_flag_scores(con, mined.summary.run_id, truth)
    engine["model_spec"] = mined.summary.model_spec
    engine["seconds"] = round(time.perf_counter() - started, 2)
    return engine
