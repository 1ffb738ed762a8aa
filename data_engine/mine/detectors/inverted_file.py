"""The inverted-file (IVF) neighbour search of all rows (Jégou et al., IEEE TPAMI 2011; faiss
``IndexIVFFlat``), the first approximate search :func:`~data_engine.mine.detectors.neighbours.
search_neighbours` tries.

k-means (faiss, seeded) cuts the rows into lists. Two ways of probing them are tried on the sample
rows, the first that reaches the recall wanted being kept for all rows:

1. **By list**, on about sqrt(N) lists: a row's neighbours are searched exactly among the rows of the ``nprobe`` lists
   nearest its own list's centre. The rows whose neighbours are wanted are the indexed rows
   themselves, so all rows of one list share their candidates and are searched in one matrix
   product (faiss ``knn``, BLAS): faiss's own ``IndexIVFFlat.search`` scans the lists query by query
   and took 2-3 times the CPU time for the same recall on clustered rows (docs/mining.md), hence
   this loop over the lists, written by hand.
2. **By row** (faiss ``IndexIVFFlat.search``): each row probes the ``nprobe`` lists nearest itself.
   A row near the border of its list loses neighbours across that border when the lists probed
   are those nearest its list's centre; on rows of few effective dimensions and no clusters (the
   generated tabular rows of ``bench scale --mining``: 32 dimensions, 8 of them carrying the
   variance) a million rows reached recall@10 0.968 at 12 of 1,000 lists this way, and stayed below
   0.96 at 32 lists by list (docs/mining.md). By row, the rows are cut into about 4 sqrt(N) finer
   lists of their own (faiss's guidance is 4-16 sqrt(N)): a row's candidates are then the rows
   of lists nearer to it, fewer for the same recall.

``nprobe`` is widened along the given steps on the sample rows alone (by row, along the steps and
:data:`ROW_LISTS_PER_ROOT` times each: as many candidates at most as by list); if neither way
reaches the target, the caller builds the graph instead. The lists of the way chosen are kept as a
faiss ``IndexIVFFlat``: a new batch of rows joins its nearest lists and each new row probes the
``nprobe`` lists nearest itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np

from data_engine.mine.detectors.base import Neighbours
from data_engine.mine.detectors.faiss_calls import drop_self, ivf_query, one_faiss_thread, pad_answers
from data_engine.mine.detectors.search_measures import recall_at_k, stopwatch
from data_engine.mine.detectors.search_threads import side_by_side

log = logging.getLogger(__name__)

# k-means trained on 64 rows per list (seeded sample), 20 iterations.
TRAIN_PER_LIST = 64
ITERATIONS = 20
# Rows searched by row at a time (their (B, k + 1) answers exist for the blocks in flight only).
QUERY_BLOCK_ROWS = 100_000
# By row, lists per sqrt(N): the generated tabular rows at a million, recall@10 0.96 or more on 1,000
# rows against exact search, CPU seconds of all rows extrapolated from them: 1,000 lists, 12 probed,
# 160 s; 2,000, 16, 136 s; 4,000, 16, 72 s; 8,000, 24, 115 s (docs/mining.md). By list the lists
# stay at sqrt(N): each list's rows are one matrix product, better the larger the list.
ROW_LISTS_PER_ROOT = 4
# Their k-means is trained on faiss's minimum of 39 rows per list, 10 iterations: at a million rows
# 9 s instead of 20 s (64 rows, 20 iterations), the recall at each width the same to 0.003.
ROW_TRAIN_PER_LIST = 39
ROW_ITERATIONS = 10

Found = tuple[Neighbours, object, float, int, str]


def ivf_search(X: np.ndarray, k: int, sample: np.ndarray, truth: np.ndarray, target: float, seed: int,
               seconds: dict[str, float], *, steps: Sequence[int], settle: bool = False) -> Found | None:
    """Neighbours of all rows of ``X`` (shape (N, d), float32) by inverted file (module doc).

    ``sample`` (shape (Q,)) are rows whose true ``k`` neighbours are ``truth`` (shape (Q, k));
    ``nprobe`` is widened along ``steps`` until ``target`` recall@k is reached on them, by list
    first, then by row. Returns the neighbours (distances and row numbers, shapes (N, k)), the
    faiss ``IndexIVFFlat`` (every row under its row number), the sample's recall in the result, the
    ``nprobe`` used and the way ("lists" or "rows"); None if neither way reaches the target within
    ``steps`` (unless ``settle``: then the widest step by list is used). Adds the wall-clock seconds
    of its stages to ``seconds`` ("lists", "probes", "row lists", "row probes", "search").
    """
    import faiss

    n, dims = X.shape
    lap = stopwatch()
    n_lists = _list_count(n, 1)
    kmeans = _trained_lists(X, n_lists, seed, TRAIN_PER_LIST, ITERATIONS)
    with one_faiss_thread():
        lists = kmeans.index.search(X, 1)[1][:, 0]
        near = faiss.knn(kmeans.centroids, kmeans.centroids, min(n_lists, max(steps, default=1)))[1]
    # Lists nearest each list's centre, its own first (a tie with a twin centre could put it second).
    near = np.array([[c, *[m for m in row if m != c]][:near.shape[1]] for c, row in enumerate(near)])
    order = np.argsort(lists, kind="stable")
    bounds = np.searchsorted(lists[order], np.arange(n_lists + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(n_lists)]
    seconds["lists"] = lap()
    row_lists: list[object] = []  # the finer lists' index, built when the rows are probed by row

    def by_list(rows: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        return _probe_lists(X, rows, lists, members, near, nprobe, k)

    def by_row(rows: np.ndarray, nprobe: int) -> tuple[np.ndarray, np.ndarray]:
        return drop_self(*ivf_query(row_lists[0], X[rows], k + 1, nprobe), rows, k)

    chosen, way = _narrowest(by_list, sample, truth, target, steps, n_lists), "lists"
    seconds["probes"] = lap()
    if chosen is None:
        fine = _list_count(n, ROW_LISTS_PER_ROOT)
        fine_kmeans = _trained_lists(X, fine, seed, ROW_TRAIN_PER_LIST, ROW_ITERATIONS) if fine > n_lists else kmeans
        row_lists.append(_indexed(X, fine_kmeans))
        seconds["row lists"] = lap()
        row_steps = sorted({*steps, *(step * ROW_LISTS_PER_ROOT for step in steps)})
        chosen, way = _narrowest(by_row, sample, truth, target, row_steps, row_lists[0].nlist), "rows"
        seconds["row probes"] = lap()
    if chosen is None:
        if not settle or not steps:
            log.info("inverted file: recall@%d below %.2f at %d of %d lists by list and %d of %d by row; searching "
                     "a graph instead", k, target, min(max(steps, default=0), n_lists), n_lists,
                     min(max(row_steps, default=0), row_lists[0].nlist), row_lists[0].nlist)
            return None
        row_lists.clear()  # the finer lists' copy of the rows, before the lists' own index is built
        chosen, way = min(max(steps), n_lists), "lists"
    if way == "lists":
        d, i = by_list(np.arange(n), chosen)
        ivf = _indexed(X, kmeans)
    else:
        ivf = row_lists[0]
        d = np.empty((n, k), dtype=np.float32)
        i = np.empty((n, k), dtype=np.int64)

        def search_block(lo: int) -> None:
            rows = np.arange(lo, min(n, lo + QUERY_BLOCK_ROWS))
            d[rows], i[rows] = by_row(rows, chosen)

        # Blocks side by side on the cores: each row's answer depends on that row and the index alone.
        side_by_side(search_block, range(0, n, QUERY_BLOCK_ROWS))
    seconds["search"] = lap()
    recall = recall_at_k(i[sample], truth)
    log.info("neighbours of %d rows by inverted file: recall@%d %.3f (%d of %d lists probed by %s, %d rows checked "
             "exactly), seconds %s", n, k, recall, chosen, ivf.nlist, "list" if way == "lists" else "row",
             len(sample), seconds)
    return Neighbours(d, i), ivf, recall, chosen, way


def _list_count(n: int, per_root: int) -> int:
    """About ``per_root`` sqrt(``n``) lists; faiss's k-means asks for at least 39 training rows per centre."""
    return max(2, min(int(round(per_root * np.sqrt(n))), n // 39))


def _trained_lists(X: np.ndarray, n_lists: int, seed: int, per_list: int, iterations: int) -> object:
    """faiss k-means of ``n_lists`` centres trained on a seeded sample of ``X`` (shape (N, d)) of
    ``per_list`` rows per centre, ``iterations`` iterations, one thread."""
    import faiss

    n, dims = X.shape
    train = X[np.sort(np.random.default_rng(seed).choice(n, size=min(n, per_list * n_lists), replace=False))]
    with one_faiss_thread():
        kmeans = faiss.Kmeans(dims, n_lists, niter=iterations, seed=seed + 1, max_points_per_centroid=per_list)
        kmeans.train(train)
    return kmeans


def _indexed(X: np.ndarray, kmeans: object) -> object:
    """A faiss ``IndexIVFFlat`` of ``X`` on the centres of ``kmeans`` (every row under its row number)."""
    import faiss

    ivf = faiss.IndexIVFFlat(kmeans.index, X.shape[1], kmeans.k)
    with one_faiss_thread():
        ivf.add(X)
    return ivf


def _narrowest(probe: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]], sample: np.ndarray,
               truth: np.ndarray, target: float, steps: Sequence[int], n_lists: int) -> int | None:
    """The narrowest ``nprobe`` of ``steps`` at which ``probe`` finds ``target`` of the sample's true
    neighbours; None if none does (probing every list is exact search: no wider step can do better)."""
    for nprobe in steps:
        chosen = min(nprobe, n_lists)
        if chosen == n_lists or recall_at_k(probe(sample, chosen)[1], truth) >= target:
            return chosen
    return None


def _probe_lists(X: np.ndarray, rows: np.ndarray, lists: np.ndarray, members: list[np.ndarray],
                 near: np.ndarray, nprobe: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact ``k`` nearest other rows of ``rows`` (shape (Q,)) among the rows of the ``nprobe``
    lists nearest each row's own list centre; distances and row numbers, shapes (Q, k)."""
    import faiss

    # Each list's answers lose their own row at once: (Q, k + 1) answers never exist for all rows.
    d = np.empty((len(rows), k), dtype=np.float32)
    i = np.empty((len(rows), k), dtype=np.int64)
    own = lists[rows]
    order = np.argsort(own, kind="stable")
    bounds = np.searchsorted(own[order], np.arange(len(members) + 1))

    def search_list(c: int) -> None:
        at = order[bounds[c]:bounds[c + 1]]
        candidates = np.concatenate([members[m] for m in near[c, :nprobe]])
        d2, found = pad_answers(*faiss.knn(X[rows[at]], X[candidates], min(k + 1, len(candidates))), k + 1)
        found = np.where(found >= 0, candidates[np.maximum(found, 0)], -1)
        d[at], i[at] = drop_self(np.sqrt(np.maximum(d2, 0)), found, rows[at], k)

    # The lists side by side on the cores: each list's rows are searched by one exact product.
    side_by_side(search_list, np.flatnonzero(np.diff(bounds)))
    return d, i
