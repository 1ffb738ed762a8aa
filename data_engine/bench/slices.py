"""``data-engine bench slices``: detection rate and false alarms of discovered weak slices
(:mod:`data_engine.mine.slices`) against the baseline "no slices" and against the same search
without the multiple-testing correction, in one run.

Data (no download, nothing in :mod:`data_engine.mine.slices` was tuned on them): scikit-learn's
bundled wine (178 rows), breast-cancer (569) and digits (1,797) tables, and a generated table
(``make_classification``, 2,000 rows, 3 well-separated classes, 8 numeric columns and a random
categorical one). Per data set and
repeat, a numeric column is drawn at random among those with at least 8 distinct values and a
region ``column > its q-quantile`` (q drawn in [0.75, 0.85]: 15-25 % of the rows) gets noisier
labels: ``--noise`` of its labels moved to another class. The out-of-fold predictions are a
scaled, regularised (C = 0.1) logistic regression's (5 folds, like the engine's ``linear`` member); the slices are searched
in the engine's feature space. A planted slice is *detected* when a reported slice has at least
half its rows in the region and its rule names the region's column; *found* counts the first part
alone. *False alarms* are the repeats where the published labels' out-of-fold errors, shuffled
across rows (so no slice exists), get any slice; *on unmodified* counts the repeats where the
published labels themselves get one (which may be a real weak region of the model, not an error).
*Extra slices* are reported slices beside the planted one, per planted run.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from data_engine.store.home import Home

if TYPE_CHECKING:  # numpy and pandas load when the benchmark runs: building the CLI's parser stays light
    import numpy as np
    import pandas as pd

DATASETS = ("wine", "breast_cancer", "digits", "generated")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bench slices``."""
    p.add_argument("--repeats", type=int, default=5, help="planted slices (and clean runs) per data set")
    p.add_argument("--noise", type=float, default=0.4, help="share of the region's labels moved to another class")
    p.add_argument("--seed", type=int, default=0)


def load(name: str, seed: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """A bundled (or generated) table: input columns, class indices (N,), the schema."""
    import numpy as np
    import pandas as pd

    from sklearn import datasets

    if name == "generated":
        # Well-separated classes without label noise: a weak region is what the benchmark plants.
        X, y = datasets.make_classification(2000, n_features=8, n_informative=5, n_classes=3, class_sep=2.0,
                                            flip_y=0.0, random_state=seed)
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
        frame["plan"] = np.random.default_rng(seed).choice(["basic", "pro", "team"], len(frame))
    else:
        data = getattr(datasets, f"load_{name}")(as_frame=True)
        frame, y = data.data.copy(), data.target.to_numpy()
        frame.columns = [str(c) for c in frame.columns]
    schema = {c: "numeric" if pd.api.types.is_numeric_dtype(frame[c]) else "categorical" for c in frame.columns}
    return frame, np.asarray(y), schema


def out_of_fold_correct(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str], seed: int) -> np.ndarray:
    """(N,) bool: whether a scaled logistic regression's 5-fold out-of-fold class is the label ``y`` (N,)."""
    import numpy as np
    import pandas as pd

    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = [c for c, k in schema.items() if k == "numeric"]
    categorical = [c for c, k in schema.items() if k == "categorical"]
    model = make_pipeline(make_column_transformer((StandardScaler(), numeric),
                                                  (OneHotEncoder(handle_unknown="ignore"), categorical)),
                          LogisticRegression(C=0.1, max_iter=300, tol=1e-3))  # regularised: quick under noise
    cv = StratifiedKFold(5, shuffle=True, random_state=seed)
    return cross_val_predict(model, frame, y, cv=cv) == y


def one_repeat(name: str, repeat: int, noise: float, seed: int) -> dict[str, Any]:
    """One planted slice and one clean run on data set ``name``: what each method reported."""
    import numpy as np

    from data_engine.mine.selection.features import selection_embedding
    from data_engine.mine.slices import find_weak_slices

    frame, y, schema = load(name, seed + repeat)
    rng = np.random.default_rng(seed * 1000 + repeat)
    columns = [c for c, k in schema.items() if k == "numeric" and frame[c].nunique() >= 8]
    column = str(rng.choice(columns))
    region = (frame[column] > frame[column].quantile(rng.uniform(0.75, 0.85))).to_numpy()
    noisy = y.copy()
    moved = region & (rng.random(len(y)) < noise)
    k = int(y.max()) + 1
    noisy[moved] = (y[moved] + rng.integers(1, k, moved.sum())) % k
    space = selection_embedding(frame, schema, "tabular")
    out: dict[str, Any] = {"dataset": name, "column": column, "region": int(region.sum())}
    started = time.perf_counter()
    clean = out_of_fold_correct(frame, y, schema, seed + repeat)
    variants = (("planted", out_of_fold_correct(frame, noisy, schema, seed + repeat)),
                # The same errors on shuffled rows: no slice exists, so any slice is a false alarm.
                ("shuffled", rng.permutation(clean)),
                # The data as published: a slice may be a real weak region of the model.
                ("clean", clean))
    for variant, correct in variants:
        for method, adjust in (("ours", True), ("uncorrected", False)):
            t0 = time.perf_counter()
            report = find_weak_slices(frame, schema, correct, space, seed=seed + repeat, adjust=adjust)
            out[f"{method}_seconds"] = out.get(f"{method}_seconds", 0.0) + time.perf_counter() - t0
            if variant != "planted":
                out[f"{method}_{variant}"] = bool(report.slices)
                continue
            hits = [s for s in report.slices if region[s.members].mean() >= 0.5]
            named = [s for s in hits if column in {c["column"] for c in s.conditions or ()}]
            out[f"{method}_found"] = bool(hits)
            out[f"{method}_detected"] = bool(named)
            out[f"{method}_extra"] = len(report.slices) - len(hits)
            if method == "ours":
                out["definition"] = (named or hits)[0].definition if hits else ""
    out["seconds"] = time.perf_counter() - started
    return out


def run(repeats: int, noise: float, seed: int, datasets: tuple[str, ...] = DATASETS) -> list[dict[str, Any]]:
    """Every repeat of every data set (:func:`one_repeat`)."""
    return [one_repeat(name, r, noise, seed) for name in datasets for r in range(repeats)]


def summarise(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method: detection, found and false-alarm rates over ``rows``, and extra slices per planted run."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    out = {}
    for method in ("ours", "uncorrected"):
        out[method] = {"detected": float(frame[f"{method}_detected"].mean()),
                       "found": float(frame[f"{method}_found"].mean()),
                       "false_alarms": float(frame[f"{method}_shuffled"].mean()),
                       "on_unmodified": float(frame[f"{method}_clean"].mean()),
                       "extra_per_run": float(frame[f"{method}_extra"].mean())}
    out["no slices"] = {"detected": 0.0, "found": 0.0, "false_alarms": 0.0, "on_unmodified": 0.0,
                        "extra_per_run": 0.0}
    return out


def cmd_bench_slices(args: argparse.Namespace, home: Home) -> int:
    """Print the per-data-set outcomes and the three methods' rates."""
    import numpy as np

    rows = run(args.repeats, args.noise, args.seed)
    print(f"weak slices: per data set {args.repeats} planted regions (labels {args.noise:.0%} noisier), as many runs "
          f"with the published labels' errors shuffled and on the published labels (seed {args.seed})")
    for name in DATASETS:
        part = [r for r in rows if r["dataset"] == name]
        print(f"  {name:<14} detected {sum(r['ours_detected'] for r in part)}/{len(part)}, "
              f"false alarms {sum(r['ours_shuffled'] for r in part)}/{len(part)}, "
              f"slices on the unmodified data {sum(r['ours_clean'] for r in part)}/{len(part)}, "
              f"search {np.mean([r['ours_seconds'] for r in part]) / 3:.2f} s per run")
    for r in rows[:: args.repeats]:
        print(f"    e.g. {r['dataset']}: planted {r['column']} (top {r['region']} rows): "
              f"{r['definition'] or 'not detected'}")
    summary = summarise(rows)
    print(f"  {'method':<44} {'detected':>9} {'found':>7} {'false alarms':>13} {'on unmodified':>14} "
          f"{'extra slices':>13}")
    for label, key in (("k-means + error tree, Fisher, BH-adjusted", "ours"),
                       ("same search, p < 0.05 without correction", "uncorrected"), ("no slices", "no slices")):
        s = summary[key]
        print(f"  {label:<44} {s['detected']:>9.0%} {s['found']:>7.0%} {s['false_alarms']:>13.0%} "
              f"{s['on_unmodified']:>14.0%} {s['extra_per_run']:>13.2f}")
    return 0


def register_bench() -> None:
    """Register ``bench slices`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("slices", "detection rate and false alarms of discovered weak slices against no slices",
                  add_arguments, cmd_bench_slices)
