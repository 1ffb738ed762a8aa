"""``data-engine bench active``: learning curves of the selection strategies against random.

Per data set and seed: ``--start`` labeled examples drawn at random, a pool of ``--pool`` unlabeled
ones, the rest as the test set. Each round, every strategy picks ``--round-size`` examples from its
own pool, their true labels are added, and the served model (``[retrain] model = "auto"``: the RBF
SVM for images, the mining ensemble elsewhere) is retrained and scored on the test set. The
default strategy runs as the engine runs it, with its random explore share. Output: mean test
accuracy per round and strategy, and the default's gain over random (mean and worst seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_engine.bench.detect import default_embedding_cache

if TYPE_CHECKING:
    import numpy as np

DATASETS = ("digits", "sentiment", "tabular")
STRATEGIES = ("diverse_minibatch", "margin", "diversity", "random")
# Rows of the generated tabular set (100 labeled + 1,200 pool + 1,200 test).
TABULAR_ROWS = 2_500


@dataclass(frozen=True)
class Curve:
    """Test accuracy of one strategy on one seed after each round; ``accuracy[0]`` is the start."""

    dataset: str
    strategy: str
    seed: int
    labels: list[int]
    accuracy: list[float]


def _dataset(name: str) -> Any:
    from data_engine.bench.datasets import load_digits_dataset, load_sentiment_dataset, make_tabular_dataset

    if name == "digits":
        return load_digits_dataset()
    if name == "sentiment":
        return load_sentiment_dataset()
    return make_tabular_dataset(TABULAR_ROWS, seed=0)


def run_curves(ds: Any, *, seed: int, start: int, pool: int, rounds: int, round_size: int,
               strategies: tuple[str, ...], explore_share: float, embedding: str = "tfidf",
               vectors: np.ndarray | None = None) -> list[Curve]:
    """One seed's learning curves for every strategy on a :class:`~data_engine.bench.datasets.BenchDataset`.

    ``embedding`` is the resolved ``[mining] embedding`` and ``vectors`` (shape (N, D), rows of
    ``ds.frame``) its output when it is a pretrained one (:func:`~data_engine.bench.embedding.engine_embedding`):
    as in the engine, the served model reads them and the strategies measure distances in them.
    Raises EngineError when the data set has fewer than ``start + pool + 100`` rows."""
    import numpy as np
    import pandas as pd
    from sklearn.base import clone

    from data_engine.errors import EngineError
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN
    from data_engine.mine.models import Schema, build_estimator
    from data_engine.mine.selection import DEFAULT_STRATEGY, SelectionPool, select_examples
    from data_engine.mine.selection.features import selection_embedding
    from data_engine.mine.models import resolve_spec

    n = len(ds.labels)
    if n < start + pool + 100:
        raise EngineError(f"{ds.name}: {n} rows; needs --start + --pool + 100 test rows")
    order = np.random.default_rng(seed).permutation(n)
    first, pool_rows, test_rows = order[:start], order[start:start + pool], order[start + pool:]
    known = np.concatenate([first, pool_rows])
    data = ds.frame.copy()
    if vectors is not None:
        # The column mining and training attach, so no fit re-embeds (see mine.embedders.features).
        data[EMBEDDING_COLUMN] = pd.Series(list(vectors), index=data.index, dtype=object)
    frame = data.iloc[known].reset_index(drop=True)
    # Labeled + pool rows; no labels read.
    space = selection_embedding(ds.frame.iloc[known].reset_index(drop=True), ds.schema, ds.modality,
                                None if vectors is None else vectors[known])
    y = ds.labels[known]
    X_test, y_test = data.iloc[test_rows].reset_index(drop=True), ds.labels[test_rows]
    spec = resolve_spec("auto", ds.modality, seed=seed, n_rows=start + rounds * round_size, served=True,
                        embedding=embedding)
    model = build_estimator(spec, Schema.from_mapping(ds.schema))
    curves = []
    for name in strategies:
        labeled = np.zeros(len(known), bool)
        labeled[:start] = True
        counts, acc = [], []
        for r in range(rounds + 1):
            fitted = clone(model).fit(frame[labeled], y[labeled])
            counts.append(int(labeled.sum()))
            acc.append(float((fitted.predict(X_test) == y_test).mean()))
            if r == rounds:
                break
            cand = np.flatnonzero(~labeled)
            probs = fitted.predict_proba(frame.iloc[cand])
            sel_pool = SelectionPool(space[cand], probs, space[labeled], seed=seed * 1000 + r)
            share = explore_share if name == DEFAULT_STRATEGY else 0.0
            labeled[cand[select_examples(sel_pool, round_size, strategy=name, explore_share=share).indices]] = True
        curves.append(Curve(ds.name, name, seed, counts, acc))
    return curves


def summarise(curves: list[Curve], default: str = "diverse_minibatch") -> dict[str, Any]:
    """Mean accuracy per strategy and round, and the default's gain over random per round (mean and
    worst seed), in points of accuracy."""
    import numpy as np

    by = {}
    for c in curves:
        by.setdefault(c.strategy, []).append(c)
    out: dict[str, Any] = {"labels": curves[0].labels, "seeds": len(by[curves[0].strategy]),
                           "mean_accuracy": {s: np.mean([c.accuracy for c in cs], axis=0).round(4).tolist()
                                             for s, cs in by.items()}}
    if default in by and "random" in by:
        rand = {c.seed: np.array(c.accuracy) for c in by["random"]}
        diffs = np.array([np.array(c.accuracy) - rand[c.seed] for c in by[default]]) * 100
        out["gain_points"] = diffs.mean(axis=0).round(2).tolist()
        out["worst_seed_gain_points"] = diffs.min(axis=0).round(2).tolist()
        out["above_random_every_round"] = bool((diffs.mean(axis=0)[1:] > 0).all())
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench active``."""
    p.add_argument("--datasets", default=",".join(DATASETS), help=f"comma-separated, from {', '.join(DATASETS)}")
    p.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated selection strategies")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (0..N-1)")
    p.add_argument("--start", type=int, default=100, help="labeled examples at the start")
    p.add_argument("--pool", type=int, default=1200, help="unlabeled examples to choose from")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--round-size", type=int, default=100)
    p.add_argument("--explore-share", type=float, default=0.1, help="the default strategy's random share")
    p.add_argument("--embedding", default="auto",
                   help="mining.embedding the engine would run (default auto: e5-small for text)")
    p.add_argument("--embedding-cache", type=Path, default=default_embedding_cache(),
                   help="Parquet file of benchmark embeddings shared with bench detect ('none': no cache)")
    p.add_argument("--json", action="store_true")


def cmd_bench_active(args: argparse.Namespace, home: Any) -> int:
    """Run the benchmark; print one table per data set (or JSON)."""
    from data_engine.bench.embedding import engine_embedding
    from data_engine.errors import EngineError

    names = [d.strip() for d in args.datasets.split(",") if d.strip()]
    bad = [d for d in names if d not in DATASETS]
    if bad:
        raise EngineError(f"--datasets: unknown {bad[0]!r}; choose from {', '.join(DATASETS)}")
    strategies = tuple(s.strip() for s in args.strategies.split(",") if s.strip())
    results = {}
    cache = None if str(args.embedding_cache) == "none" else args.embedding_cache
    for name in names:
        started = time.perf_counter()
        ds = _dataset(name)
        embedding, vectors = engine_embedding(ds, embedding=args.embedding, cache=cache)
        curves = []
        for seed in range(args.seeds):
            curves += run_curves(ds, seed=seed, start=args.start, pool=args.pool, rounds=args.rounds,
                                 round_size=args.round_size, strategies=strategies, explore_share=args.explore_share,
                                 embedding=embedding, vectors=vectors)
            print(f"{name}: seed {seed} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        results[name] = {**summarise(curves), "embedding": embedding, "seconds": round(time.perf_counter() - started, 1)}
        if not args.json:
            _print_table(name, results[name])
    if args.json:
        print(json.dumps(results))
    return 0


def _print_table(name: str, res: dict[str, Any]) -> None:
    labels = res["labels"]
    print(f"\n{name}: mean test accuracy over {res['seeds']} seeds, by labels (embedding {res['embedding']}; "
          f"{res['seconds']} s)")
    print(f"{'strategy':<16}" + "".join(f"{n:>8}" for n in labels))
    for s, acc in res["mean_accuracy"].items():
        print(f"{s:<16}" + "".join(f"{a:>8.4f}" for a in acc))
    if "gain_points" in res:
        print(f"{'default-random':<16}" + "".join(f"{g:>+8.2f}" for g in res["gain_points"]) + "  points (mean)")
        print(f"{'  worst seed':<16}" + "".join(f"{g:>+8.2f}" for g in res["worst_seed_gain_points"]))
        print(f"default above random at every round: {res['above_random_every_round']}")


def register_bench() -> None:
    """Register ``bench active`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("active", "learning curves of selection strategies (default, margin, diversity) against random",
                  add_arguments, cmd_bench_active)
