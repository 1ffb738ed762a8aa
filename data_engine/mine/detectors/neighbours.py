"""Feature space and nearest neighbours shared by the ``outlier`` and ``near_duplicate`` detectors.

The space is the ``[mining] embedding``: a per-row embedder's stored vectors (e5-small for text,
the user's own vectors with ``column``), or the ``tfidf`` embedder fitted on the rows here.

Exact neighbour search (scikit-learn, brute force) is used up to :data:`EXACT_SEARCH_ROWS`
examples; it costs N x N distances, hours at a million rows. Above the limit the search is
approximate, and tried in two ways, the first that reaches the recall wanted on the sample rows
(below) being kept:

1. An inverted file (IVF; Jégou et al., IEEE TPAMI 2011, as in faiss ``IndexIVFFlat``): k-means
   cuts the rows into about sqrt(N) lists, and each row's neighbours are searched exactly among
   the rows of the ``nprobe`` lists nearest its own list's centre (all rows of a list in one matrix
   product) or, if that falls short, among the rows of about 4 sqrt(N) finer lists nearest the row
   itself (faiss's search, row by row); ``nprobe`` is widened along :data:`NPROBE_STEPS` up to
   :data:`MAX_NPROBE` (by row, on the finer lists, four times as far), and the lists of the way
   chosen are kept (:mod:`~data_engine.mine.detectors.inverted_file`). On rows with cluster structure (clustered
   and real rows measured) or few effective dimensions this is the fastest search found here; on
   rows without any structure (standard normal), where no partition keeps neighbours together, the
   probes needed approach the whole table and the graph below is used.
2. A hierarchical navigable small-world graph (HNSW; Malkov & Yashunin, IEEE TPAMI 2020)
   from faiss (``IndexHNSWFlat``), whose graph every row is then looked up in. faiss builds it on
   one thread: the graph, and so every neighbour, is then the same on every run (parallel insertion
   depends on thread timing). The searches of all rows (both methods) run blocks of rows side by side
   (:mod:`~data_engine.mine.detectors.search_threads`), with the same answers as one thread.
   Its quality is measured, not assumed: :data:`RECALL_SAMPLE` rows drawn at random are
   searched exactly, then searched in the graph with a widening beam (``efSearch`` along
   :data:`EF_STEPS`, up to :data:`MAX_EF_SEARCH`) until the share of their true ``k`` neighbours found
   (recall@k) reaches :data:`TARGET_RECALL`; only then are all rows searched, once, with that beam.
The recall reached is kept with the index and logged. Either way, the rows left above the outlier
limit are then searched exactly (:mod:`~data_engine.mine.detectors.far_rows`: a failed search looks
like a far row). (The k-means blocks of 2,000 rows this replaced found 24 % of the neighbours of
structureless rows; docs/mining.md, ``data-engine bench neighbours``.)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.compute.backend import Backend
from data_engine.mine.detectors.base import Neighbours
from data_engine.mine.detectors.faiss_calls import add_rows as _add
from data_engine.mine.detectors.faiss_calls import hnsw_query as _hnsw_query
from data_engine.mine.detectors.faiss_calls import ivf_query as _ivf_query
from data_engine.mine.detectors.faiss_calls import GraphFile, kept, open_graph
from data_engine.mine.detectors.faiss_calls import drop_self as _drop_self
from data_engine.mine.detectors.far_rows import search_far_rows_exactly
from data_engine.mine.detectors.inverted_file import ivf_search
from data_engine.mine.detectors.search_process import APART_ROWS, search_apart
from data_engine.mine.detectors.search_measures import recall_at_k
from data_engine.mine.detectors.search_measures import stopwatch as _stopwatch
from data_engine.mine.detectors.search_threads import side_by_side
from data_engine.mine.embedders.tfidf import TfidfEmbedder
from data_engine.positions import positions_of

log = logging.getLogger(__name__)

NEIGHBOURS_K = 10
EXACT_SEARCH_ROWS = 20_000
# HNSW settings: links per node (M) and beam width while building (docs/mining.md). On 200,000
# standard-normal rows in 32 dimensions (the hardest case of ``bench neighbours``), one thread, M = 32
# needed search beam 128 for recall@10 0.967, M = 48 reached 0.976 at beam 64: more links make each
# step dearer but the beam narrower. Build beam 40, not 64, as the search of all rows runs on every core
# and the build on one (idle, two cores): 1,000,000 generated tabular rows 213 -> 149 s (build 173 ->
# 116 s, recall 0.987 -> 0.979 at beam 16), 200,000 standard-normal rows 61 -> 58 s (beam 48 -> 96).
HNSW_LINKS = 48
EF_CONSTRUCTION = 40
# Search beams tried on the sample rows, narrowest first (at least k + 1 wide). A try searches the
# sample only (under a second): fine steps keep the beam, so the search of all rows, no wider than needed.
EF_STEPS = (16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024)
EF_SEARCH = EF_STEPS[0]
MAX_EF_SEARCH = EF_STEPS[-1]
# Recall is estimated on this many random rows against exact search; the target leaves room for
# the sampling error of that estimate (a standard error of about 0.003 at recall 0.96 on 1,000 rows
# x 10 neighbours), above the 0.95 the engine promises.
RECALL_SAMPLE = 1_000
TARGET_RECALL = 0.96
# Inverted file: lists of about sqrt(N) rows each (1,000 at a million rows). Lists probed per row,
# narrowest first; above MAX_NPROBE lists (3 % of a million rows' lists, 12,000-32,000 candidates per
# row, about as much CPU time as the graph) the graph is searched instead. By row, on lists four
# times finer, the steps go four times as far (the same candidates at most). Measured in docs/mining.md.
NPROBE_STEPS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)
MAX_NPROBE = NPROBE_STEPS[-1]
METHODS = ("auto", "ivf", "hnsw")
# Rows searched in the graph at a time (their answers and copies: about 10 MB per block in flight).
SEARCH_BLOCK_ROWS = 100_000


@dataclass
class NeighbourIndex:
    """Rows embedded so far and their neighbours, kept between mining runs.

    keys : np.ndarray of shape (N,), "example_id@version" of each row
    embedding : np.ndarray of shape (N, d)
    neighbours : Neighbours over the N rows
    graph : np.ndarray of uint8, GraphFile or None, the faiss index (HNSW graph or inverted file)
        of an approximate search, serialised or in its own file
    recall : float or None, measured recall@k of the approximate search (None if exact)
    ef_search : int or None, the HNSW beam width that reached it, used again for added rows
    nprobe : int or None, the inverted file's lists probed per row that reached it (None unless
        the search was by inverted file)
    """

    keys: np.ndarray
    embedding: np.ndarray
    neighbours: Neighbours
    embedder: TfidfEmbedder | None
    graph: np.ndarray | GraphFile | None = None
    recall: float | None = None
    ef_search: int | None = None
    nprobe: int | None = None


@dataclass
class Search:
    """Result of :func:`search_neighbours`: the neighbours, the faiss index kept as bytes or a
    file (:func:`~data_engine.mine.detectors.faiss_calls.kept`; None if the search was exact), its
    measured recall@k, the HNSW ``efSearch`` or the inverted file's ``nprobe`` that reached it
    (the other None), how the inverted file's lists were probed (``probed_by``: "lists", nearest
    each list's centre, or "rows", nearest each row) and the wall-clock seconds of each stage of the
    approximate search (exact sample, then build / beam / search for the graph, lists / probes /
    row probes / search for the inverted file, then ``far rows``, the exact search of the rows above
    the outlier limit)."""

    neighbours: Neighbours
    graph: np.ndarray | GraphFile | None
    recall: float | None
    ef_search: int | None
    seconds: dict[str, float] = field(default_factory=dict)
    nprobe: int | None = None
    probed_by: str | None = None

    @property
    def method(self) -> str:
        """The search used: "exact", "ivf" (inverted file) or "hnsw" (graph)."""
        return "exact" if self.graph is None else "ivf" if self.nprobe is not None else "hnsw"


def build_index(keys: np.ndarray, frame: pd.DataFrame, schema: dict[str, str], modality: str, *,
                k: int = NEIGHBOURS_K, seed: int = 0, compute: Backend | None = None,
                vectors: np.ndarray | None = None, graph_dir: Path | None = None) -> NeighbourIndex:
    """Find every row's neighbours: in ``vectors`` (shape (N, d), a per-row embedding) if given,
    else in the ``tfidf`` embedding of ``frame`` fitted here. ``compute`` is accepted for the
    callers' uniformity; the search (:func:`search_neighbours`, which writes an approximate index
    into ``graph_dir`` when given) runs in this process, or with a ``graph_dir`` above
    :data:`~data_engine.mine.detectors.search_process.APART_ROWS` rows in one of its own."""
    embedder = None
    if vectors is None:
        embedder = TfidfEmbedder(schema=schema, modality=modality, seed=seed)
        X = embedder.fit_transform(frame)
    else:
        X = vectors
    X = np.ascontiguousarray(X, dtype=np.float32)
    if graph_dir is not None and len(X) > max(APART_ROWS, EXACT_SEARCH_ROWS):
        # The graph and the search's transients then live and die in a process of their own (search_process).
        found = search_apart(search_neighbours, X, k=k, seed=seed, graph_dir=graph_dir, exact_rows=EXACT_SEARCH_ROWS)
        log.info("neighbours of %d rows searched apart: recall@%d %s, seconds %s", len(X), k, found.recall, found.seconds)
    else:
        found = search_neighbours(X, k=k, seed=seed, graph_dir=graph_dir)
    return NeighbourIndex(_key_array(keys), X, found.neighbours, embedder, found.graph, found.recall, found.ef_search,
                          found.nprobe)


def extend_index(index: NeighbourIndex, keys: np.ndarray, frame: pd.DataFrame, *,
                 compute: Backend | None = None, vectors: np.ndarray | None = None,
                 graph_dir: Path | None = None) -> NeighbourIndex | None:
    """Add new rows: their ``vectors`` (shape (M, d)) or, for a tfidf index, ``frame`` embedded
    with the fitted embedder; search their neighbours only (in the HNSW graph or the inverted file,
    which they join, for an approximate index; in the inverted file each new row probes the
    ``nprobe`` lists nearest itself, faiss ``IndexIVFFlat.search``).

    The old rows keep their neighbours (a new row closer to an old one than its neighbours is seen
    from the new row's side). Returns None when the index must be rebuilt instead (an exact index
    that would outgrow :data:`EXACT_SEARCH_ROWS`). The grown approximate index is kept as
    :func:`search_neighbours` keeps it (``graph_dir``); ValueError when the kept one is unreadable.
    """
    n_old, n_new = len(index.keys), len(frame)
    k = index.neighbours.indices.shape[1]
    X_new = index.embedder.transform(frame) if index.embedder is not None else vectors
    X_new = np.ascontiguousarray(X_new, dtype=np.float32)
    X = np.vstack([index.embedding, X_new])
    new_rows = np.arange(n_old, n_old + n_new)
    approx = None
    if index.graph is None:
        if n_old + n_new > EXACT_SEARCH_ROWS:
            return None
        d, i = _query(X, X_new, min(k + 1, len(X)))
    else:
        approx = open_graph(index.graph)  # the caller's index still holds the old bytes
        _add(approx, X_new)
        nprobe = getattr(index, "nprobe", None)  # indexes kept before the inverted file have none
        if nprobe is not None:
            d, i = _ivf_query(approx, X_new, k + 1, nprobe)
        else:
            d, i = _hnsw_query(approx, X_new, k + 1, index.ef_search or EF_SEARCH)
    d, i = _drop_self(d, i, new_rows, k)
    neighbours = Neighbours(np.vstack([index.neighbours.distances, d]), np.vstack([index.neighbours.indices, i]))
    graph = None
    if approx is not None:  # the new rows the approximate index left far from all, searched exactly
        holder = [approx]
        del approx
        graph = _checked_and_kept(X, neighbours.distances[n_old:], neighbours.indices[n_old:],
                                  neighbours.distances.mean(axis=1), new_rows, holder, nprobe is not None, graph_dir)[2]
    keys_all = np.concatenate([index.keys, _key_array(keys)])
    return NeighbourIndex(keys_all, X, neighbours, index.embedder, graph, index.recall, index.ef_search,
                          getattr(index, "nprobe", None))


def _key_array(keys: np.ndarray) -> np.ndarray:
    """Keys as fixed-width numpy strings: pickled as one buffer, not a million Python objects."""
    return np.asarray(keys, dtype=str)


def align_index(index: NeighbourIndex, keys: np.ndarray) -> Neighbours | None:
    """The index's neighbours for rows ``keys`` (shape (N,)) in that order, or None unless the
    index holds exactly these rows."""
    keys = _key_array(keys)
    if len(keys) != len(index.keys):
        return None
    held = index.neighbours
    # A fresh index holds the rows in this order already (its keys are unique): its arrays as they
    # are, the same values the lookup below gives, without the lookup's Python strings and hash table
    # or the copies (about 280 MB at a million rows).
    if held.indices.dtype == np.int64 and np.array_equal(index.keys, keys):
        return Neighbours(held.distances, held.indices)
    # Matched by pyarrow (positions_of): a pandas Index of the keys made a Python string of each.
    pos = positions_of(keys, index.keys)
    if (pos < 0).any():
        return None
    current_of = np.empty(len(keys), dtype=np.int64)
    current_of[pos] = np.arange(len(keys))
    return Neighbours(held.distances[pos], current_of[held.indices[pos]])


def find_neighbours(X: np.ndarray, *, k: int = NEIGHBOURS_K, seed: int = 0,
                    compute: Backend | None = None) -> Neighbours:
    """The ``k`` nearest other rows of every row of ``X`` (shape (N, d)), Euclidean.

    Exact below :data:`EXACT_SEARCH_ROWS` rows, HNSW with measured recall above (see module doc).
    ``compute`` is accepted for the callers' uniformity; the search runs in this process.
    """
    return search_neighbours(X, k=k, seed=seed).neighbours


def search_neighbours(X: np.ndarray, *, k: int = NEIGHBOURS_K, seed: int = 0,
                      exact_rows: int | None = None, target_recall: float | None = None,
                      method: str = "auto", graph_dir: Path | None = None) -> Search:
    """Neighbours of all rows of ``X`` (shape (N, d)), the index and its measured recall@k.

    ``exact_rows`` (default :data:`EXACT_SEARCH_ROWS`) is the size up to which search is exact;
    ``target_recall`` (default :data:`TARGET_RECALL`) the recall@k the approximate search is
    widened to reach, estimated on :data:`RECALL_SAMPLE` random rows (``seed``). ``method``:
    "auto" tries the inverted file and uses the graph if the inverted file does not reach the target
    within :data:`MAX_NPROBE` lists; "ivf" or "hnsw" force one (for measurements; a forced inverted
    file stops at :data:`MAX_NPROBE` lists whatever its recall). Raises ValueError for another method.
    The approximate index is kept as bytes, or with ``graph_dir`` written by faiss into a file there.
    """
    if method not in METHODS:
        raise ValueError(f"neighbour search method {method!r}: expected one of {', '.join(METHODS)}")
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = len(X)
    k = max(1, min(k, n - 1))
    if n <= (EXACT_SEARCH_ROWS if exact_rows is None else exact_rows):
        return Search(_exact(X, k), None, None, None)
    target = TARGET_RECALL if target_recall is None else target_recall
    start = time.perf_counter()
    sample = np.sort(np.random.default_rng(seed).choice(n, size=min(n, RECALL_SAMPLE), replace=False))
    truth = _drop_self(*_query(X, X[sample], k + 1), sample, k)[1]
    seconds = {"exact sample": time.perf_counter() - start}
    in_lists = None
    if method != "hnsw":
        in_lists = ivf_search(X, k, sample, truth, target, seed, seconds, steps=NPROBE_STEPS, settle=method == "ivf")
    if in_lists is not None:  # probed by list or by row
        neighbours, approx, recall, nprobe, way = in_lists
        found = Search(neighbours, None, recall, None, seconds, nprobe=nprobe, probed_by=way)
    else:
        neighbours, approx, recall, ef = _hnsw_search(X, k, sample, truth, target, seconds)
        found = Search(neighbours, None, recall, ef, seconds)
    del in_lists
    holder = [approx]
    del approx
    d, i = neighbours.distances, neighbours.indices
    far, seconds["far rows"], found.graph = _checked_and_kept(X, d, i, d.mean(axis=1), None, holder,
                                                              found.nprobe is not None, graph_dir)
    log.info("%d rows far from all others searched again exactly in %.1f s", far, seconds["far rows"])
    return found


def _checked_and_kept(X: np.ndarray, distances: np.ndarray, indices: np.ndarray, mean_distance: np.ndarray,
                      rows: np.ndarray | None, holder: list[object], by_lists: bool,
                      graph_dir: Path | None) -> tuple[int, float, np.ndarray | GraphFile]:
    """The far rows among ``rows`` searched exactly in place (:func:`~data_engine.mine.detectors.
    far_rows.search_far_rows_exactly`, arguments as there), then the approximate index in ``holder``
    kept (:func:`~data_engine.mine.detectors.faiss_calls.kept`; ``holder`` is emptied). Returns the
    rows searched again, the check's wall-clock seconds and the kept index.

    With ``by_lists`` the index is an inverted file whose lists bound where the far rows' exact
    neighbours can be, so it is kept after the check; a graph is of no use to it and is kept (written
    out and freed) before."""
    lists = holder[0] if by_lists else None
    graph = None if lists is not None else kept(holder, graph_dir)
    lap = _stopwatch()
    far = search_far_rows_exactly(X, distances, indices, mean_distance, rows, lists=lists)
    seconds = lap()
    if lists is not None:
        del lists
        graph = kept(holder, graph_dir)
    return far, seconds, graph


def _hnsw_search(X: np.ndarray, k: int, sample: np.ndarray, truth: np.ndarray, target: float,
                 seconds: dict[str, float]) -> tuple[Neighbours, object, float, int]:
    """The graph search of :func:`search_neighbours`, the sample's true neighbours given: the
    neighbours, the faiss ``IndexHNSWFlat``, the sample's recall and the beam that reached it."""
    import faiss

    n = len(X)
    hnsw = faiss.IndexHNSWFlat(X.shape[1], HNSW_LINKS)
    hnsw.hnsw.efConstruction = EF_CONSTRUCTION
    lap = _stopwatch()
    _add(hnsw, X)
    seconds["build"] = lap()
    ef = beam_for_recall(hnsw, X, sample, truth, target)
    seconds["beam"] = lap()
    # Searched a block of rows at a time into the result, so that faiss's (N, k + 1) answers and
    # their copies exist for the blocks in flight only; blocks side by side on the cores (each row's
    # search is its own: the same neighbours).
    d = np.empty((n, k), dtype=np.float32)
    i = np.empty((n, k), dtype=np.int64)

    def search_block(lo: int) -> None:
        rows = np.arange(lo, min(n, lo + SEARCH_BLOCK_ROWS))
        d[rows], i[rows] = _drop_self(*_hnsw_query(hnsw, X[rows], k + 1, ef), rows, k)

    side_by_side(search_block, range(0, n, SEARCH_BLOCK_ROWS))
    seconds["search"] = lap()
    # The same rows searched with the same beam: the recall of the sample as it ends up in the result.
    recall = recall_at_k(i[sample], truth)
    log.info("neighbours of %d rows by HNSW: recall@%d %.3f (efSearch %d, %d rows checked exactly), seconds %s",
             n, k, recall, ef, len(sample), seconds)
    return Neighbours(d, i), hnsw, recall, ef


def beam_for_recall(hnsw: object, X: np.ndarray, sample: np.ndarray, truth: np.ndarray, target: float) -> int:
    """The narrowest beam of :data:`EF_STEPS` at which the graph ``hnsw`` finds at least ``target``
    of the true neighbours ``truth`` (row numbers, shape (Q, k)) of rows ``sample`` (shape (Q,)) of
    ``X``; :data:`MAX_EF_SEARCH` if none does. Searches the sample rows only."""
    k = truth.shape[1]
    for ef in EF_STEPS:
        if ef <= k:
            continue
        found = _drop_self(*_hnsw_query(hnsw, X[sample], k + 1, ef), sample, k)[1]
        if recall_at_k(found, truth) >= target:
            return ef
    return MAX_EF_SEARCH


def _exact(X: np.ndarray, k: int) -> Neighbours:
    d, i = _query(X, X, k + 1)
    return Neighbours(*_drop_self(d, i, np.arange(len(X)), k))


def _query(ref: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances (float32) and row numbers in ``ref`` of the ``k`` nearest rows of ``ref`` to
    each query row, shapes (Q, k) (scikit-learn brute force)."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(k, len(ref)), algorithm="brute").fit(ref)
    d, i = nn.kneighbors(queries)
    return d.astype(np.float32), i
