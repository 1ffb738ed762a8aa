"""``data-engine bench drift``: detection rate and false alarms of batch drift against the obvious
baseline (per-column test at 0.05 without correction across columns), in one run.

Data: scikit-learn's bundled breast-cancer table (569 rows, 30 numeric columns; no download) with
its diagnosis as a categorical column; nothing in :mod:`data_engine.ingest.drift` was tuned on it.
The training rows in force are a random ``--reference`` rows; every batch is ``--batch-rows`` rows
drawn from the other rows. ``--batches`` batches are left as drawn (same distribution: any flag is
a false alarm); as many again get one random change: a numeric column in another unit (x100) or,
for the categorical column, a category never seen (10 % of its rows). A changed batch is detected
when it is flagged and the changed column is named.

``--ingest`` also lands batches through the engine's ``ingest`` (the drift as ``ingest --json``
reports it; see :mod:`data_engine.bench.drift_ingest`), on breast-cancer and, when the shared data
folder is there, on review sentences from other sites. ``--images`` judges batches of image files
(scikit-learn's digits as PNG files; :mod:`data_engine.bench.drift_images`), compared by the domain
classifier on the image embedding: unchanged batches (the false-alarm rate) and inverted or faint ones.
"""

from __future__ import annotations

import argparse

from data_engine.store.home import Home


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bench drift``."""
    p.add_argument("--batches", type=int, default=20, help="same-distribution batches (and as many changed)")
    p.add_argument("--reference", type=int, default=300, help="training rows in force")
    p.add_argument("--batch-rows", type=int, default=100, help="rows per batch")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ingest", action="store_true",
                   help="also through the engine's ingest (breast-cancer; review sentences from other sites)")
    p.add_argument("--images", action="store_true",
                   help="also batches of image files (digits as PNG files, judged on the image embedding; inverted or faint changed)")


def run(batches: int, reference_rows: int, batch_rows: int, seed: int) -> dict[str, float]:
    """Figures of both methods: detection rate on changed batches, false-alarm rate on unchanged."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    from data_engine.ingest.drift import batch_drift, uncorrected_ks_flags

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns=["target"])
    frame["diagnosis"] = np.where(data.target == 1, "benign", "malignant")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(frame))
    reference = frame.iloc[order[:reference_rows]].reset_index(drop=True)
    pool = frame.iloc[order[reference_rows:]].reset_index(drop=True)
    counts = {"ours_detected": 0, "ours_false": 0, "ks_detected": 0, "ks_false": 0}
    for i in range(batches):
        same = pool.sample(n=batch_rows, random_state=seed * 1000 + i)
        counts["ours_false"] += batch_drift(reference, same, seed=i).drifted
        counts["ks_false"] += bool(uncorrected_ks_flags(reference, same))
        changed = pool.sample(n=batch_rows, random_state=seed * 1000 + batches + i).reset_index(drop=True)
        column = str(rng.choice(frame.columns))
        if column == "diagnosis":
            changed.loc[: batch_rows // 10 - 1, column] = "unrecorded"
        else:
            changed[column] = changed[column] * 100
        report = batch_drift(reference, changed, seed=i)
        counts["ours_detected"] += report.drifted and column in report.columns
        counts["ks_detected"] += column in uncorrected_ks_flags(reference, changed)
    return {k: v / batches for k, v in counts.items()}


def cmd_bench_drift(args: argparse.Namespace, home: Home) -> int:
    """Print both methods' detection and false-alarm rates."""
    r = run(args.batches, args.reference, args.batch_rows, args.seed)
    print(f"drift on {args.batches} changed and {args.batches} unchanged batches of {args.batch_rows} rows "
          f"against {args.reference} training rows (breast-cancer table, seed {args.seed})")
    print(f"  {'method':<44} {'detected':>9} {'false alarms':>13}")
    print(f"  {'Holm-corrected tests + domain classifier':<44} {r['ours_detected']:>9.0%} {r['ours_false']:>13.0%}")
    print(f"  {'per-column test at 0.05, no correction':<44} {r['ks_detected']:>9.0%} {r['ks_false']:>13.0%}")
    if args.ingest:
        from data_engine.bench.drift_ingest import run_through_ingest

        print(f"through ingest (each batch landed unlabeled in a home whose training data is {args.reference} rows)")
        print(f"  {'data set':<44} {'detected':>9} {'false alarms':>13}")
        for name, f in run_through_ingest(args.batches, args.reference, args.batch_rows, args.seed).items():
            what = "breast-cancer: a unit or a new category, named" if name == "breast-cancer" else \
                "sentiment: amazon training; imdb/yelp changed"
            print(f"  {what:<44} {f['detected']:>9.0%} {f['false']:>13.0%}")
    if args.images:
        from data_engine.bench.drift_images import run_images

        f = run_images(args.batches, args.reference, args.batch_rows, args.seed)
        print(f"image files ({args.reference} digit PNGs in force; the domain classifier on the image embedding)")
        print(f"  {'digits: inverted or faint ink':<44} {f['detected']:>9.0%} {f['false']:>13.0%}")
        print(f"  domain classifier AUC: unchanged batches mean {f['auc_mean']:.3f}, max {f['auc_max']:.3f}; "
              f"changed batches min {f['auc_changed_min']:.3f}")
    return 0


def register_bench() -> None:
    """Register ``bench drift`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("drift", "detection rate and false alarms of batch drift against per-column KS at 0.05 "
                  "without correction", add_arguments, cmd_bench_drift)
