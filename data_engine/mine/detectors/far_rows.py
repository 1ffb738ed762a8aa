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
(docs/mining.md). When the search was by inverted file, its lists prune the exact search instead:
no row of a list is nearer a query than the query's distance to the list's centre less the list's
radius (the triangle inequality), and the row itself and its k approximate neighbours lie within
its reach (its distance to the farthest of them, taken anew in float64), so a list whose bound
exceeds the reach cannot hold any of its true k + 1 nearest rows. The rest are scanned in full
(faiss ``IndexIVFFlat.search_preassigned``). A list's radius covers the nearest
:data:`CORE_SHARE` of its members only: the far rows themselves lie at the edges of their lists
and would widen every radius; the members beyond (the outer rows, at most 1 % of each list) are
searched for every far row against all of them (faiss brute force), and the two answers merged:
the same answers as against every row. On the million generated rows, the rows scanned per far
row fall from 15 % to about 7.5 % (docs/mining.md; measured on sqrt(N) lists, before the search by
row had finer lists of its own). Written by hand because faiss prunes lists by
the nearest centres only, an approximate rule.
"""

from __future__ import annotations

import numpy as np

from data_engine.mine.detectors.faiss_calls import drop_self, one_faiss_thread, pad_answers
from data_engine.mine.detectors.outlier import outlier_limit
from data_engine.mine.detectors.search_threads import side_by_side

# Far rows searched against all rows at a time (their (rows, N) distances are never all formed:
# faiss's brute-force search keeps k per query).
VERIFY_BLOCK_ROWS = 1_000
# By the lists, a block's (rows, lists) bounds are several float64 arrays: fewer rows a block where
# the lists are many (25 MB an array at this many cells: 1,000 rows and 3,162 lists; the search by
# row at ten million rows has 12,649).
BOUND_CELLS = 3_200_000
# The lists' bounds and the rows' reach are taken in float64 from the float32 rows: a list is kept
# unless its bound exceeds the reach by this share of the distances involved, far above their rounding.
BOUND_SLACK = 1e-4
# A list's radius covers this share of its members, nearest its centre first; the rest are outer
# rows. Measured on the million generated rows' 3,670 far rows (share of all rows in the lists
# scanned per far row; outer rows, each searched for every far row): whole radii 15.2 %, none;
# 0.999: 13.7 %, 464; 0.99: 7.6 %, 9,492; 0.95: 4.8 %, 49,536.
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
    itself (-1 where fewer than k were found). ``mean_distance``: shape (N,), every row's mean
    neighbour distance (not changed). ``lists``: a faiss ``IndexIVFFlat`` holding every row of ``X``
    under its row number, whose lists then prune the search (module doc); None searches against
    every row. Returns how many rows were searched again.
    """
    import faiss

    own = np.arange(len(X)) if rows is None else rows
    k = distances.shape[1]
    width = min(k + 1, len(X))
    mean_distance = mean_distance.copy()
    checked = np.zeros(len(own), dtype=bool)
    bounds: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    def search_block(at: np.ndarray) -> None:
        queries = X[own[at]]
        if lists is None:
            d2, found = faiss.knn(queries, X, width)
        else:
            centres, radii, outer, outer_rows = bounds[0]
            probe = lists_within(queries, farthest_named(X, queries, indices[at]), centres, radii)
            d2, found = lists.search_preassigned(queries, width, probe, None)
            if len(outer):
                d2_outer, found_outer = faiss.knn(queries, outer_rows, min(width, len(outer)))
                d2, found = nearest_of_both(d2, found, d2_outer, np.where(found_outer >= 0, outer[found_outer], -1))
        d2, found = pad_answers(d2, found, k + 1)
        distances[at], indices[at] = drop_self(np.sqrt(np.maximum(d2, 0)), found, own[at], k)

    probed = None if lists is None else lists.nprobe
    try:
        while True:
            positions = far_rows(mean_distance, own)
            positions = positions[~checked[positions]]
            if not len(positions):
                break
            if lists is not None and not bounds:
                # Read once, and only when some row is far: a batch of new rows mostly has none.
                centres, radii, outer = list_bounds(lists)
                bounds.append((centres, radii, outer, X[outer]))
                # search_preassigned takes one list per column up to nprobe (-1: not probed), and no
                # per-call parameters: every block probes up to all lists.
                lists.nprobe = lists.nlist
            block = VERIFY_BLOCK_ROWS if lists is None else max(1, min(VERIFY_BLOCK_ROWS, BOUND_CELLS // lists.nlist))
            side_by_side(search_block, [positions[lo:lo + block] for lo in range(0, len(positions), block)])
            checked[positions] = True
            mean_distance[own[positions]] = distances[positions].mean(axis=1)
    finally:
        if lists is not None:
            lists.nprobe = probed
    return int(checked.sum())


def farthest_named(X: np.ndarray, queries: np.ndarray, named: np.ndarray) -> np.ndarray:
    """Each query's distance (shape (Q,), float64) to the farthest of the rows ``named`` for it
    (row numbers, shape (Q, k)), taken anew in float64: the k rows named and the query's own row
    lie within it, so its k + 1 nearest rows do too. Infinite where a name is missing (-1)."""
    # Not the stored distances: faiss's matrix-product distances in float32 round with the rows'
    # norms, and the bound must hold whatever the rows' distance from the origin.
    gaps = X[np.maximum(named, 0)].astype(np.float64) - queries.astype(np.float64)[:, None, :]
    farthest = np.sqrt((gaps * gaps).sum(axis=2)).max(axis=1)
    farthest[(named < 0).any(axis=1)] = np.inf
    return farthest


def list_bounds(lists: object, core: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The centres (shape (L, d)) and radii (shape (L,)) of the lists of the faiss ``IndexIVFFlat``
    ``lists``, float64, and its outer rows (row numbers, shape (O,), ascending): a list's radius is
    the distance from its centre within which its nearest ``core`` share (default
    :data:`CORE_SHARE`) of members lie, rounded up to whole members (0 for an empty list); its outer
    rows are the members beyond, at most ``1 - core`` of each list's. Members are read from its
    inverted lists (faiss's ``inspect_tools.get_invlist``)."""
    from faiss.contrib.inspect_tools import get_invlist

    core = CORE_SHARE if core is None else core
    with one_faiss_thread():
        centres = lists.quantizer.reconstruct_n(0, lists.nlist).astype(np.float64)
    radii = np.zeros(lists.nlist)
    outer = [np.zeros(0, dtype=np.int64)]
    for c in range(lists.nlist):
        ids, codes = get_invlist(lists.invlists, c)
        if len(codes):  # a flat list's codes are its rows' float32 vectors
            members = codes.view(np.float32).reshape(len(codes), -1)
            gap = np.sqrt(((members - centres[c]) ** 2).sum(axis=1))
            radii[c] = np.sort(gap)[int(np.ceil(core * len(gap))) - 1]
            outer.append(ids[gap > radii[c]])
    return centres, radii, np.sort(np.concatenate(outer))


def nearest_of_both(d2: np.ndarray, i: np.ndarray, d2_more: np.ndarray,
                    i_more: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``width`` (= ``d2.shape[1]``) nearest of two answers for the same queries (squared
    distances and row numbers, shapes (Q, width) and (Q, m)), a row found by both counted once."""
    # A row in both answers has the same distance up to rounding: the second one is dropped.
    seen = (i_more[:, :, None] == i[:, None, :]).any(axis=2) | (i_more < 0)
    d2_all = np.hstack([d2, np.where(seen, np.inf, d2_more)])
    i_all = np.hstack([i, np.where(seen, -1, i_more)])
    order = np.argsort(d2_all, axis=1, kind="stable")[:, :d2.shape[1]]
    return np.take_along_axis(d2_all, order, axis=1), np.take_along_axis(i_all, order, axis=1)


def lists_within(queries: np.ndarray, reach: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each query (shape (Q, d)), the lists that may hold a member within ``reach`` of it
    (shape (Q,)) among the members their radii cover (``centres`` (L, d), ``radii`` (L,), as
    :func:`list_bounds` gives them; outer rows are not covered): list numbers, shape (Q, L), -1
    where the list's centre is farther than ``reach`` plus the list's radius."""
    q = queries.astype(np.float64)
    # (Q, L) float64 arrays (at most BOUND_CELLS cells from the check's blocks), worked on in place.
    bound = q @ centres.T
    bound *= -2
    bound += (q * q).sum(axis=1)[:, None]
    bound += (centres * centres).sum(axis=1)[None, :]
    np.sqrt(np.maximum(bound, 0, out=bound), out=bound)  # the distance to each centre
    slack = BOUND_SLACK * (bound + reach[:, None])
    bound -= radii[None, :]  # no covered member is nearer than this
    # A reach that is not finite (fewer than k found) keeps every list.
    keep = ~(bound > reach[:, None] + slack)
    return np.where(keep, np.arange(len(centres))[None, :], -1)
