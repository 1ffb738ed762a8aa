"""Near-copy recall for ``bench detect --dataset digits-files`` and ``shapes-files``: which
injected near copies the ``near_duplicate`` detector flagged, per kind of copy."""

from __future__ import annotations

import json
import time
from typing import Any

import duckdb
import numpy as np
import pandas as pd


def near_copy_scores(con: duckdb.DuckDBPyConnection, run_id: int, copies: pd.DataFrame,
                     ids: np.ndarray) -> dict[str, Any]:
    """Recall of the injected near copies (``copy_row``, ``source_row``, ``kind``; rows of ``ids``,
    shape (N,)) among run ``run_id``'s near-duplicate flags, overall and per kind, and how many
    other examples were flagged.

    A copy counts as found when it is flagged as a duplicate of its source; ``flagged_any`` also
    counts a copy flagged with another partner (e.g. a copy of a digit that has a twin).
    """
    found = con.execute(
        "SELECT example_id, json_extract_string(detail, '$.duplicate_of') AS partner FROM issues "
        "WHERE run_id = ? AND issue_type = 'near_duplicate' AND is_issue", [run_id]).fetchdf()
    partner = pd.Series(found["partner"].to_numpy(), index=found["example_id"].to_numpy())
    copy_ids = pd.Series(ids[copies["copy_row"].to_numpy()])
    source_ids = pd.Series(ids[copies["source_row"].to_numpy()])
    flagged = copy_ids.isin(partner.index).to_numpy()
    mate = copy_ids.map(partner).to_numpy(dtype=object)
    # Either side may name the other: the source may be flagged with the copy as its partner.
    source_mate = source_ids.map(partner).to_numpy(dtype=object)
    paired = flagged & ((mate == source_ids.to_numpy()) | (source_mate == copy_ids.to_numpy()))
    involved = set(copy_ids) | set(source_ids)
    others = int((~found["example_id"].isin(involved)).sum())
    kinds = {kind: round(float(paired[(copies["kind"] == kind).to_numpy()].mean()), 4)
             for kind in sorted(copies["kind"].unique())}
    return {"injected": len(copies), "recall": round(float(paired.mean()), 4) if len(copies) else 0.0,
            "flagged_any": round(float(flagged.mean()), 4) if len(copies) else 0.0, "recall_by_kind": kinds,
            "other_examples_flagged": others, "examples": len(ids)}


def format_near_copies(r: dict[str, Any]) -> str:
    """One line about the injected near copies."""
    return (f"near copies: {r['injected']} injected, recall {r['recall']:.3f} (by kind {json.dumps(r['recall_by_kind'])});"
            f" {r['other_examples_flagged']} of the other {r['examples'] - 2 * r['injected']} examples flagged")


def image_throughput(paths: Any) -> float:
    """Images per second of the ``image`` embedder over ``paths`` (not memoised before: each file
    is decoded, resized and featurised once), on the threads it uses; the first file warms up."""
    from data_engine.mine.embedders.image import embed_paths

    items = [str(p) for p in paths]
    embed_paths(items[:1])  # imports scikit-image once, outside the timing
    started = time.perf_counter()
    embed_paths(items[1:])
    return round((len(items) - 1) / max(time.perf_counter() - started, 1e-9), 1)
