"""Where the drift of each landed training batch is kept: ``batch_drift`` (the ``drift`` object
``ingest --json`` gives) and ``drift_rows`` (the domain classifier's score of each row of a drifted
batch, which the ``drift`` detector ranks); and its plot. Computed by
:mod:`data_engine.ship.drift_check` (it needs the champion and the text embedding).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb

from data_engine.ingest.result import IngestResult

# numpy, pandas and scipy load only when a batch is compared: `ingest` of a first batch starts without them.
if TYPE_CHECKING:
    import pandas as pd

    from data_engine.ingest.drift import DriftReport


def drift_due(con: duckdb.DuckDBPyConnection, result: IngestResult) -> bool:
    """True when ``result`` is a newly ingested training batch and there are labeled training
    examples in force outside it to compare it with (one SQL query; nothing heavy loaded)."""
    if result.already_known or result.status != "ingested" or result.is_gold or not result.rows_ok:
        return False
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM current_examples ce JOIN current_labels cl USING (example_id) "
        "WHERE NOT ce.is_gold AND cl.label IS NOT NULL AND ce.batch_id <> ?)", [result.batch_id]).fetchone()[0]


def store_drift(con: duckdb.DuckDBPyConnection, batch_id: str, report: DriftReport, drift: dict[str, Any],
                example_ids: pd.Series) -> None:
    """Keep the ``drift`` object of ``report`` and, for a drifted batch, the domain-classifier score
    of each scored row (``example_ids``: the batch frame's ids, indexed like it)."""
    con.execute("DELETE FROM batch_drift WHERE batch_id = ?", [batch_id])
    con.execute("DELETE FROM drift_rows WHERE batch_id = ?", [batch_id])
    con.execute("INSERT INTO batch_drift (batch_id, drifted, columns, auc, report) VALUES (?, ?, ?, ?, ?)",
                [batch_id, report.drifted, json.dumps(report.columns), report.auc, json.dumps(drift)])
    if report.drifted and report.row_scores is not None:
        import pandas as pd

        rows = pd.DataFrame({"batch_id": batch_id, "example_id": example_ids.loc[report.row_scores.index].astype(str),
                             "score": report.row_scores.to_numpy(float)})
        con.execute("INSERT INTO drift_rows SELECT batch_id, example_id, score FROM rows")


def stored_drift(con: duckdb.DuckDBPyConnection, batch_id: str) -> dict[str, Any] | None:
    """The ``drift`` object stored for ``batch_id``, or None."""
    row = con.execute("SELECT report FROM batch_drift WHERE batch_id = ?", [batch_id]).fetchone()
    return json.loads(row[0]) if row else None


def drift_scores(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """``{example_id: score}`` of the rows of drifted batches (the highest score where an example
    came in more than one): what the ``drift`` detector ranks."""
    return dict(con.execute("SELECT example_id, max(score) FROM drift_rows GROUP BY example_id").fetchall())


def drift_plot(drift: dict[str, Any]) -> bytes:
    """A PNG bar chart of a ``drift`` object: -log10 of each column's Holm-adjusted p-value, drifted
    columns in red, the ``alpha`` line dashed, the domain classifier's AUC in the title."""
    import io

    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    per = drift["per_column"]
    heights = [-np.log10(max(c["p_adjusted"], 1e-300)) for c in per]
    fig, ax = plt.subplots(figsize=(min(12.0, 3.0 + 0.5 * len(per)), 3.5), dpi=100)
    try:
        ax.bar(range(len(per)), heights, color=["tab:red" if c["drifted"] else "tab:gray" for c in per])
        ax.axhline(-np.log10(drift["alpha"]), linestyle="--", color="black", linewidth=1,
                   label=f"alpha = {drift['alpha']:g} (Holm)")
        ax.set_xticks(range(len(per)), [c["column"][:16] for c in per], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("-log10 adjusted p")
        auc = "n/a" if drift["auc"] is None else f"{drift['auc']:.2f}"
        ax.set_title(f"Drift from the training data in force (domain classifier AUC {auc})", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(fig)
