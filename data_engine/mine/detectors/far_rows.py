"""Rows an approximate neighbour search left far from every other row, searched again exactly.

A graph walk that goes wrong ends among rows far from its query, and an inverted file misses the
neighbours in lists it does not probe: either way the row looks far from all others, which is
what the ``outlier`` check flags. Measured on the 1,000,000 generated tabular rows of ``bench scale
--mining`` (docs/mining.md): of the 10,506 outliers the graph's neighbours made (build beam 64,
recall@10 0.987 on random rows), 6,879 were not outliers by exact search; with build beam 40,
2,531 of 6,157. Random rows' recall does not see this: the failed walks are few, and all in the tail.

So the rows whose mean neighbour distance is above the outlier check's limit
(:func:`~data_engine.mine.detectors.outlier.outlier_limit`) are searched exactly against every row
(faiss brute force, blocks of rows side by side on the cores), and again for rows above the limit
taken anew on the corrected distances, until every row above it has exact neighbours. Exact
distances are never larger than approximate ones, so a row under the limit is not an outlier by
exact search either: every outlier flag stands on exact neighbours.
"""

from __future__ import annotations

import numpy as np

from data_engine.mine.detectors.faiss_calls import drop_self, pad_answers
from data_engine.mine.detectors.outlier import outlier_limit
from data_engine.mine.detectors.search_threads import side_by_side

# Far rows searched against all rows at a time (their (rows, N) distances are never all formed:
# faiss's brute-force search keeps k per query).
VERIFY_BLOCK_ROWS = 1_000


def far_rows(mean_distance: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Positions, among ``rows`` (default all; shape (Q,)), of the rows whose mean neighbour distance
    (``mean_distance``, shape (N,), every row of the index) is above the outlier limit on all rows,
    or not finite (a search that found fewer than k)."""
    finite = mean_distance[np.isfinite(mean_distance)]
    limit = outlier_limit(finite) if len(finite) else 0.0
    own = mean_distance if rows is None else mean_distance[rows]
    return np.flatnonzero(~(own <= limit))


def search_far_rows_exactly(X: np.ndarray, distances: np.ndarray, indices: np.ndarray,
                            mean_distance: np.ndarray, rows: np.ndarray | None = None) -> int:
    """Replace, in place, the answers of the far rows (:func:`far_rows`) by exact ones, until no row
    above the limit is left unchecked (the corrected rows move the quartiles the limit rests on).

    ``X``: every row's vector, shape (N, d), float32. ``distances`` / ``indices``: shape (Q, k), the
    approximate neighbours of rows ``rows`` of ``X`` (default all, Q = N), ascending, without the row
    itself. ``mean_distance``: shape (N,), every row's mean neighbour distance (not changed).
    Returns how many rows were searched again.
    """
    import faiss

    own = np.arange(len(X)) if rows is None else rows
    k = distances.shape[1]
    mean_distance = mean_distance.copy()
    checked = np.zeros(len(own), dtype=bool)

    def search_block(at: np.ndarray) -> None:
        d2, found = pad_answers(*faiss.knn(X[own[at]], X, min(k + 1, len(X))), k + 1)
        distances[at], indices[at] = drop_self(np.sqrt(np.maximum(d2, 0)), found, own[at], k)

    while True:
        positions = far_rows(mean_distance, own)
        positions = positions[~checked[positions]]
        if not len(positions):
            break
        side_by_side(search_block, [positions[lo:lo + VERIFY_BLOCK_ROWS]
                                    for lo in range(0, len(positions), VERIFY_BLOCK_ROWS)])
        checked[positions] = True
        mean_distance[own[positions]] = distances[positions].mean(axis=1)
    return int(checked.sum())
