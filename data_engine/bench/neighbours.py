"""``data-engine bench neighbours``: recall@10 and seconds of the engine's neighbour search against
exact search and the former k-means blocks, on clustered, structureless and real embeddings; and
the outlier and near-duplicate flags from approximate against exact neighbours.

Data sets (32 dimensions unless real):

* ``clustered``: 100 Gaussian clusters (scikit-learn ``make_blobs``, spread 1, centres in a box of
  side 20);
* ``structureless``: standard normal rows, no cluster structure (the hard case for any
  partition or graph);
* ``digits``: scikit-learn's 1,797 digits (64 pixels, scaled), and ``sentiment``: the e5-small
  embeddings (384 dimensions) of the 3,000 Sentiment Labelled Sentences. Both are far smaller than
  the sizes asked, so the real rows are drawn with replacement and each draw is moved by Gaussian
  jitter whose length is about half the real rows' median nearest-neighbour distance: the clouds
  of neighbouring real rows overlap, and a row's neighbours are no longer only copies of one row.
  This is stated in the output; it is real geometry at the large scale, not real rows.

Exact search over N rows costs N x N distances (hours at a million), so recall is measured on a
random sample of query rows (``--sample``, default 1,000) searched exactly, and the exact search's
seconds for all N rows are the sample's seconds times N / sample (printed as estimated).

Seconds are wall-clock; beside them the CPU seconds of this process (all its threads), which a
busy shared machine stretches far less than the wall clock.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from data_engine.commands.bench import add_benchmark
from data_engine.store.home import Home

if TYPE_CHECKING:
    import numpy as np

SETS = ("clustered", "structureless", "digits", "sentiment")
K = 10
# The former search: exact within k-means blocks of this many rows (kept here as the baseline).
OLD_BLOCK_ROWS = 2_000


def register_bench() -> None:
    """Add ``bench neighbours``."""
    add_benchmark("neighbours", "recall@10 and seconds of the neighbour search vs exact search and the old "
                  "k-means blocks; outlier and near-duplicate flags vs exact neighbours", add_arguments, handle)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bench neighbours``."""
    p.add_argument("--rows", type=int, nargs="+", default=[50_000], help="rows per data set (default 50000)")
    p.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    p.add_argument("--sample", type=int, default=1_000, help="query rows searched exactly for recall")
    p.add_argument("--flag-rows", type=int, default=50_000,
                   help="structureless rows for the flag comparison (exact neighbours of all; 0 = skip)")
    p.add_argument("--no-blocks", action="store_true", help="skip the old k-means blocks")
    p.add_argument("--hnsw", action="store_true",
                   help="also time the HNSW graph alone (the engine's search where the inverted file falls short)")
    p.add_argument("--seed", type=int, default=0)


def handle(args: argparse.Namespace, home: Home) -> int:
    """Print one line per data set and size, then the flag comparison."""
    from data_engine.errors import EngineError

    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(sets) - set(SETS))
    if unknown:
        raise EngineError(f"bench neighbours --sets: unknown {', '.join(unknown)} (known: {', '.join(SETS)})")
    print(f"load average at start: {_load()}")
    print(f"{'set':<14}{'rows':>9}{'dims':>6}  {'method':<22}{'recall@10':>10}{'seconds':>10}{'cpu s':>9}")
    for rows in args.rows:
        for name in sets:
            X, note = make_set(name, rows, seed=args.seed)
            for method, recall, (seconds, cpu), extra in compare(X, sample=args.sample, seed=args.seed,
                                                                 blocks=not args.no_blocks, hnsw=args.hnsw):
                print(f"{name:<14}{rows:>9}{X.shape[1]:>6}  {method:<22}{recall:>10.3f}{seconds:>10.1f}{cpu:>9.1f}"
                      f"  {extra}", flush=True)
            if note:
                print(f"{'':<14}{note}")
    if args.flag_rows:
        print(flag_report(args.flag_rows, seed=args.seed))
    print(f"load average at end: {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} cores)"


def make_set(name: str, rows: int, *, seed: int = 0, dims: int = 32) -> tuple[np.ndarray, str]:
    """Rows of data set ``name``, shape (rows, d) float32, and a note on how it was made."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if name == "structureless":
        return rng.standard_normal((rows, dims)).astype(np.float32), ""
    if name == "clustered":
        from sklearn.datasets import make_blobs

        X, _ = make_blobs(rows, n_features=dims, centers=100, cluster_std=1.0, center_box=(-10, 10),
                          random_state=seed)
        return X.astype(np.float32), ""
    real = _real_rows(name)
    return jittered(real, rows, seed=seed), (f"{len(real)} real rows drawn with replacement, each with Gaussian "
                                             "jitter of half their median nearest-neighbour distance")


def _real_rows(name: str) -> np.ndarray:
    """The real embeddings: scaled digit pixels, or e5-small vectors of the sentiment sentences."""
    import numpy as np

    if name == "digits":
        from sklearn.datasets import load_digits
        from sklearn.preprocessing import StandardScaler

        return StandardScaler().fit_transform(load_digits().data).astype(np.float32)
    from data_engine.bench.datasets import load_sentiment_dataset
    from data_engine.compute.embedding import embed_frame
    from data_engine.mine.embedders import get_embedder

    data = load_sentiment_dataset()
    return np.asarray(embed_frame(get_embedder("e5-small"), data.frame, [data.text_column]), dtype=np.float32)


def jittered(real: np.ndarray, rows: int, *, seed: int = 0) -> np.ndarray:
    """``rows`` draws (with replacement) of the rows of ``real`` (shape (R, d)), each moved by
    Gaussian noise of expected length half the median nearest-neighbour distance of ``real``."""
    import numpy as np

    from sklearn.neighbors import NearestNeighbors

    d = NearestNeighbors(n_neighbors=2).fit(real).kneighbors(real)[0][:, 1]
    scale = 0.5 * float(np.median(d[d > 0])) / np.sqrt(real.shape[1])
    rng = np.random.default_rng(seed)
    return (real[rng.integers(0, len(real), rows)] + rng.normal(0, scale, (rows, real.shape[1]))).astype(np.float32)


def compare(X: np.ndarray, *, sample: int, seed: int, blocks: bool,
            hnsw: bool = False) -> list[tuple[str, float, tuple[float, float], str]]:
    """(method, recall@10 on the sample, (wall seconds, CPU seconds), remark) for exact search,
    the engine's search, the HNSW graph alone if ``hnsw`` and the old blocks, on ``X`` (shape (N, d))."""
    import numpy as np

    from data_engine.mine.detectors import neighbours as nb

    n = len(X)
    queries = np.sort(np.random.default_rng(seed + 1).choice(n, size=min(n, sample), replace=False))
    truth, (wall, cpu) = _timed(lambda: nb._drop_self(*nb._query(X, X[queries], K + 1), queries, K)[1])
    out = [("exact (brute force)", 1.0, (wall * n / len(queries), cpu * n / len(queries)),
            f"estimated: {len(queries)} rows timed, x N / {len(queries)}")]
    for method in ("auto", "hnsw") if hnsw else ("auto",):
        found, seconds = _timed(lambda: nb.search_neighbours(X, k=K, seed=seed, method=method))
        out.append((f"{'engine' if method == 'auto' else 'graph alone'} ({found.method})",
                    nb.recall_at_k(found.neighbours.indices[queries], truth), seconds, _remark(found)))
    if blocks:
        old, seconds = _timed(lambda: old_blocks(X, k=K, seed=seed))
        out.append(("old k-means blocks", nb.recall_at_k(old[queries], truth), seconds, ""))
    return out


def _remark(found: object) -> str:
    """The search's own recall estimate, its width and the seconds of its stages."""
    if found.recall is None:
        return ""
    width = (f"nprobe {found.nprobe} by {found.probed_by[:-1]}" if found.nprobe is not None
             else f"efSearch {found.ef_search}")
    return (f"own estimate {found.recall:.3f} at {width}; s: "
            + ", ".join(f"{stage} {s:.1f}" for stage, s in found.seconds.items()))


def _timed(step: Callable[[], object]) -> tuple[object, tuple[float, float]]:
    """The step's result and its (wall-clock, CPU) seconds."""
    t, c = time.perf_counter(), time.process_time()
    result = step()
    return result, (time.perf_counter() - t, time.process_time() - c)


def old_blocks(X: np.ndarray, *, k: int = K, seed: int = 0) -> np.ndarray:
    """The search this engine used before: exact within MiniBatchKMeans blocks of about
    :data:`OLD_BLOCK_ROWS` rows (blocks of k rows or fewer searched against all rows). Returns
    the neighbours' row numbers, shape (N, k)."""
    import numpy as np

    from sklearn.cluster import MiniBatchKMeans

    from data_engine.mine.detectors import neighbours as nb

    n = len(X)
    n_blocks = max(2, n // OLD_BLOCK_ROWS)
    km = MiniBatchKMeans(n_clusters=n_blocks, random_state=seed, batch_size=4096, n_init=1, max_iter=20,
                         compute_labels=False)
    km.fit(X[np.random.default_rng(seed).choice(n, size=min(n, 50 * n_blocks), replace=False)])
    block = km.predict(X)
    indices = np.empty((n, k), dtype=np.int64)
    for b in np.unique(block):
        rows = np.flatnonzero(block == b)
        ref = rows if len(rows) > k else np.arange(n)
        _, i = nb._query(X[ref], X[rows], k + 1)
        indices[rows] = nb._drop_self(np.zeros(i.shape, np.float32), ref[i], rows, k)[1]
    return indices


def planted(rows: int, *, dims: int = 32, seed: int = 0, extremes: int = 50,
            copies: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Structureless rows (shape (rows, dims)) with ``extremes`` rows moved four times as far from
    the centre and ``copies`` rows that are near copies (noise of 1e-3) of others; returns the
    rows, the extremes' and the copies' row numbers."""
    import numpy as np

    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, dims)).astype(np.float32)
    chosen = rng.choice(rows, size=extremes + 2 * copies, replace=False)
    far, copy, source = chosen[:extremes], chosen[extremes:extremes + copies], chosen[extremes + copies:]
    X[far] *= 4
    X[copy] = X[source] + rng.normal(0, 1e-3, (copies, dims)).astype(np.float32)
    return X, far, copy


def flags(neighbours: object) -> tuple[np.ndarray, np.ndarray]:
    """Outlier and near-duplicate flags (shape (N,) bool each) of unlabeled rows with ``neighbours``."""
    import numpy as np

    from data_engine.mine.detectors import MiningData, NearDuplicateDetector, OutlierDetector

    n = len(neighbours.indices)
    data = MiningData(example_ids=np.array([f"e{i}" for i in range(n)], dtype=object),
                      labels=np.full(n, -1), classes=("a", "b"), probs=np.full((n, 2), 0.5),
                      out_of_sample=np.ones(n, bool), feature_hash=np.arange(n).astype(str).astype(object),
                      neighbours=neighbours, modality="image")
    outlier = OutlierDetector().find_issues(data).issues["is_issue"].to_numpy(bool)
    copy = NearDuplicateDetector().find_issues(data).issues["is_issue"].to_numpy(bool)
    return outlier, copy


def flag_report(rows: int, *, seed: int = 0) -> str:
    """Outlier and near-duplicate flags of planted structureless data from the engine's search
    against those from exact neighbours: differing rows, and the planted rows found."""
    from data_engine.mine.detectors import neighbours as nb

    X, far, copy = planted(rows, seed=seed)
    approx, (s_approx, _) = _timed(lambda: nb.search_neighbours(X, seed=seed).neighbours)
    exact, (s_exact, _) = _timed(lambda: nb.search_neighbours(X, seed=seed, exact_rows=len(X)).neighbours)
    (oa, ca), (oe, ce) = flags(approx), flags(exact)
    return (f"flags on {rows} structureless rows with {len(far)} planted extremes and {len(copy)} near copies "
            f"(engine {s_approx:.1f} s, exact {s_exact:.1f} s): outlier flags differ on {int((oa != oe).sum())} rows "
            f"({int(oa.sum())} vs {int(oe.sum())} flagged), near-duplicate flags differ on {int((ca != ce).sum())} "
            f"({int(ca.sum())} vs {int(ce.sum())}); planted found by the engine: extremes {int(oa[far].sum())}/"
            f"{len(far)}, copies {int(ca[copy].sum())}/{len(copy)}")
