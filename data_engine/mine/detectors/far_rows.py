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

Against every row, this costs (far rows) x N distances, and the far rows' share grows with the
rows on the generated tabular rows (0.4 % at a million): at ten million it ran for over 45 minutes
(docs/mining.md). When the search was by inverted file,
its lists prune the exact search instead: no row of a list is nearer a query than the query's
distance to the list's centre less the list's radius (the triangle inequality), and the row itself
and its k approximate neighbours lie within its approximate k-th distance, so the lists whose bound
exceeds that distance cannot hold any of its true k + 1 nearest rows. The rest are scanned in full
(faiss ``IndexIVFFlat.search_preassigned``). A list's radius is taken over the nearest
:data:`CORE_SHARE` of its members only: the far rows themselves lie at the edges of their lists and
would widen every radius; the few members beyond (the outer rows, 1 % of all) are searched for
every far row against all of them (faiss brute force), and the two answers merged: the same
answers as against every row. On the million generated rows, 7.5 % of the rows are then scanned
per far row (15 % with whole radii; docs/mining.md). Written by hand because faiss prunes lists
by the nearest centres only, an approximate rule.
"""

from __future__ import annotations

import numpy as np

from data_engine.mine.detectors.faiss_calls import drop_self, one_faiss_thread, pad_answers
from data_engine.mine.detectors.outlier import outlier_limit
from data_engine.mine.detectors.search_threads import side_by_side

# Far rows searched against all rows at a time (their (rows, N) distances are never all formed:
# faiss's brute-force search keeps k per query).
VERIFY_BLOCK_ROWS = 1_000
# The lists' bounds are taken in float64, faiss's distances in float32: a list is kept unless its
# bound exceeds the k-th distance by this share of the distances involved, far above their rounding.
BOUND_SLACK = 1e-4
# A list's radius covers this share of its members, nearest its centre first; the rest are outer
# rows. Measured on the million generated rows' 3,670 far rows (share of all rows scanned per far
# row, outer rows): whole radii 15.2 %, 0; 0.999: 12.2 %, 1,464; 0.99: 7.5 %, 10,476; 0.95: 4.7 %, 50,435.
CORE_SHARE = 0.99


def far_rows(mean_distance: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Positions, among ``rows`` (default all; shape (Q,)), of the rows whose mean neighbour distance
    (``mean_distance``, shape (N,), every row of the index) is above the outlier limit on all rows,
    or not finite (a search that found fewer than k)."""
    finite = mean_distance[np.isfinite(mean_distance)]
    limit = outlier_limit(finite) if len(finite) else 0.0
    own = mean_distance if rows is None else mean_distance[rows]
    return np.flatnonzero(~(own <= limit))


def search_far_rows_exactly(X: np.ndarray, distances: np.ndarray, indices: np.ndarray,
                            mean_distance: np.ndarray, rows: np.ndarray | None = None, *,
                            lists: object | None = None) -> int:
    """Replace, in place, the answers of the far rows (:func:`far_rows`) by exact ones, until no row
    above the limit is left unchecked (the corrected rows move the quartiles the limit rests on).

    ``X``: every row's vector, shape (N, d), float32. ``distances`` / ``indices``: shape (Q, k), the
    approximate neighbours of rows ``rows`` of ``X`` (default all, Q = N), ascending, without the row
    itself, each distance that of the row named beside it. ``mean_distance``: shape (N,), every row's
    mean neighbour distance (not changed). ``lists``: a faiss ``IndexIVFFlat`` holding every row of
    ``X`` under its row number, whose lists then prune the search (module doc); None searches
    against every row. Returns how many rows were searched again.
    """
    import faiss

    own = np.arange(len(X)) if rows is None else rows
    k = distances.shape[1]
    width = min(k + 1, len(X))
    mean_distance = mean_distance.copy()
    checked = np.zeros(len(own), dtype=bool)
    if lists is not None:
        centres, radii, outer = list_bounds(lists)
        outer_rows = X[outer]

    def search_block(at: np.ndarray) -> None:
        queries = X[own[at]]
        if lists is None:
            d2, found = faiss.knn(queries, X, width)
        else:
            d2, found = lists.search_preassigned(queries, width, lists_within(queries, distances[at, -1], centres, radii),
                                                 None)
            if len(outer):
                d2_outer, found_outer = faiss.knn(queries, outer_rows, min(width, len(outer)))
                d2, found = nearest_of_both(d2, found, d2_outer, np.where(found_outer >= 0, outer[found_outer], -1))
        d2, found = pad_answers(d2, found, k + 1)
        distances[at], indices[at] = drop_self(np.sqrt(np.maximum(d2, 0)), found, own[at], k)

    probed = None if lists is None else lists.nprobe
    try:
        if lists is not None:
            # search_preassigned takes one list per column up to nprobe (-1: not probed), and no
            # per-call parameters: every block probes up to all lists.
            lists.nprobe = lists.nlist
        while True:
            positions = far_rows(mean_distance, own)
            positions = positions[~checked[positions]]
            if not len(positions):
                break
            side_by_side(search_block, [positions[lo:lo + VERIFY_BLOCK_ROWS]
                                        for lo in range(0, len(positions), VERIFY_BLOCK_ROWS)])
            checked[positions] = True
            mean_distance[own[positions]] = distances[positions].mean(axis=1)
    finally:
        if lists is not None:
            lists.nprobe = probed
    return int(checked.sum())


def list_bounds(lists: object, core: float = CORE_SHARE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centres (shape (L, d)) and radii (shape (L,)) of the lists of the faiss ``IndexIVFFlat``
    ``lists``, float64, and its outer rows (row numbers, shape (O,), ascending): a list's radius is
    the distance from its centre within which its nearest ``core`` share of members lie (rounded
    up; 0 for an empty list), its outer rows the members beyond. Members are read from its inverted
    lists (faiss's ``inspect_tools.get_invlist``)."""
    from faiss.contrib.inspect_tools import get_invlist

    with one_faiss_thread():
        centres = lists.quantizer.reconstruct_n(0, lists.nlist).astype(np.float64)
    radii = np.zeros(lists.nlist)
    outer = []
    for c in range(lists.nlist):
        ids, codes = get_invlist(lists.invlists, c)
        if len(codes):  # a flat list's codes are its rows' float32 vectors
            members = codes.view(np.float32).reshape(len(codes), -1)
            gap = np.sqrt(((members - centres[c]) ** 2).sum(axis=1))
            radii[c] = np.sort(gap)[int(np.ceil(core * len(gap))) - 1]
            outer.append(ids[gap > radii[c]])
    return centres, radii, np.sort(np.concatenate(outer)) if outer else np.zeros(0, dtype=np.int64)


def nearest_of_both(d2: np.ndarray, i: np.ndarray, d2_more: np.ndarray, i_more: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` (= ``d2.shape[1]``) nearest of two answers for the same queries (squared
    distances and row numbers, shapes (Q, width) and (Q, m)), a row found by both counted once."""
    # A row in both answers has the same distance up to rounding: the second one is dropped.
    seen = (i_more[:, :, None] == i[:, None, :]).any(axis=2) | (i_more < 0)
    d2_all = np.hstack([d2, np.where(seen, np.inf, d2_more)])
    i_all = np.hstack([i, np.where(seen, -1, i_more)])
    order = np.argsort(d2_all, axis=1, kind="stable")[:, :d2.shape[1]]
    return np.take_along_axis(d2_all, order, axis=1), np.take_along_axis(i_all, order, axis=1)


def lists_within(queries: np.ndarray, kth_distance: np.ndarray, centres: np.ndarray,
                 radii: np.ndarray) -> np.ndarray:
    """For each query (shape (Q, d)), the lists that may hold a row nearer it than its
    ``kth_distance`` (shape (Q,)): list numbers, shape (Q, L), -1 where the list's centre is farther
    than that distance plus the list's radius (``centres`` (L, d), ``radii`` (L,))."""
    q = queries.astype(np.float64)
    squared = (q * q).sum(axis=1)[:, None] + (centres * centres).sum(axis=1)[None, :] - 2 * q @ centres.T
    to_centre = np.sqrt(np.maximum(squared, 0))
    kth = kth_distance.astype(np.float64)[:, None]
    # A distance that is not finite (fewer than k found) keeps every list.
    keep = ~(to_centre - radii[None, :] > kth + BOUND_SLACK * (kth + to_centre))
    return np.where(keep, np.arange(len(centres))[None, :], -1)
