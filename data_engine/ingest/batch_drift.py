"""Where the drift of each landed training batch is kept: ``batch_drift`` (the ``drift`` object
``ingest --json`` gives) and ``drift_rows`` (the domain classifier's score of each row of a drifted
batch, which the ``drift`` detector ranks). Computed by
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
    # A plain scan of the stored rows first: with no other training batch (the first ingest) the
    # query on the views, which took 1.3 s after 2,000,000 fresh rows, a third of the whole ingest, is not needed.
    if not con.execute("SELECT EXISTS (SELECT 1 FROM examples WHERE NOT is_gold AND batch_id <> ?)",
                       [result.batch_id]).fetchone()[0]:
        return False
    return con.execute(
        "SELECT EXISTS (SELECT 1 FROM current_examples ce JOIN current_labels cl USING (example_id) "
        "WHERE NOT ce.is_gold AND cl.label IS NOT NULL AND ce.batch_id <> ?)", [result.batch_id]).fetchone()[0]


def store_drift(con: duckdb.DuckDBPyConnection, batch_id: str, report: DriftReport | None, drift: dict[str, Any],
                example_ids: pd.Series) -> None:
    """Keep the ``drift`` object of ``report`` (None: a batch not compared, ``drift`` saying why) and, for
    a drifted batch, the domain-classifier score of each scored row (``example_ids``: the batch frame's
    ids, indexed like it)."""
    con.execute("DELETE FROM batch_drift WHERE batch_id = ?", [batch_id])
    con.execute("DELETE FROM drift_rows WHERE batch_id = ?", [batch_id])
    con.execute("INSERT INTO batch_drift (batch_id, drifted, columns, auc, report) VALUES (?, ?, ?, ?, ?)",
                [batch_id, drift["drifted"], json.dumps(drift["columns"]), drift["auc"], json.dumps(drift)])
    if report is not None and report.drifted and report.row_scores is not None:
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
