"""``data-engine bench weighting``: does trusting flagged labels less help the retrained model?

For each seed: hold out a clean test set (the gold stand-in), flip ``--noise`` of the other labels,
compute 5-fold out-of-sample probabilities with the engine's model, flag label issues with cleanlab
(what the ``label`` detector does), then train the engine's model three ways and measure test
accuracy: on every noisy label; without the flagged, unreviewed labels (what
``[retrain] weight_by_label_quality = true`` does); and on the clean labels (the ceiling).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

# Share of the data held out as the clean test set.
TEST_SHARE = 0.25
# A mean gain below half a point of test accuracy is one or two test examples per seed: noise.
MIN_GAIN = 0.005


@dataclass(frozen=True)
class WeightingRun:
    """Figures of one seed."""

    seed: int
    flipped: int
    flagged: int
    flagged_true: int
    accuracy_noisy: float
    accuracy_weighted: float
    accuracy_clean: float
    seconds: float


def run_once(dataset: Any, *, model: str, noise: float, seed: int) -> WeightingRun:
    """One seed of the benchmark on a :class:`data_engine.bench.datasets.BenchDataset`."""
    import numpy as np
    from cleanlab.filter import find_label_issues
    from sklearn.model_selection import train_test_split

    from data_engine.bench.datasets import inject_noise
    from data_engine.mine.models import Schema, build_estimator
    from data_engine.tasks.oof import out_of_fold_probabilities
    from data_engine.mine.models import resolve_spec
    from data_engine.ship.fitting import fit_estimator
    from data_engine.ship.training import label_trust_mask

    started = time.perf_counter()
    classes = dataset.classes
    idx_train, idx_test = train_test_split(np.arange(len(dataset.labels)), test_size=TEST_SHARE,
                                           random_state=seed, stratify=dataset.labels)
    X_train = dataset.frame.iloc[idx_train].reset_index(drop=True)
    X_test = dataset.frame.iloc[idx_test].reset_index(drop=True)
    clean = dataset.labels[idx_train]
    noisy = inject_noise(clean, classes, rate=noise, kind="uniform", seed=seed)
    spec = resolve_spec(model, dataset.modality, seed=seed)
    schema = Schema.from_mapping(dataset.schema)
    index = {c: i for i, c in enumerate(classes)}
    y_int = np.array([index[c] for c in noisy])
    oof = out_of_fold_probabilities(build_estimator(spec, schema), X_train, y_int, len(classes), seed=seed)
    flagged = find_label_issues(y_int, oof.probs, n_jobs=1)
    keep = label_trust_mask(np.full(len(noisy), "ingest", dtype=object), flagged)

    def accuracy(X: Any, y: np.ndarray) -> float:
        """Test accuracy of the engine's model trained on ``X`` (N, D) and labels ``y`` (N,)."""
        est = fit_estimator(build_estimator(spec, schema), X, y)
        return float(np.mean(est.predict(X_test).astype(str) == dataset.labels[idx_test]))

    return WeightingRun(
        seed=seed, flipped=int((noisy != clean).sum()), flagged=int(flagged.sum()),
        flagged_true=int((flagged & (noisy != clean)).sum()),
        accuracy_noisy=accuracy(X_train, noisy),
        accuracy_weighted=accuracy(X_train[keep].reset_index(drop=True), noisy[keep]),
        accuracy_clean=accuracy(X_train, clean),
        seconds=time.perf_counter() - started,
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench weighting``."""
    p.add_argument("--dataset", choices=("digits", "sentiment"), default="digits")
    p.add_argument("--model", default="auto", help="model spec as in [mining] model (default auto)")
    p.add_argument("--noise", type=float, default=0.2)
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1)")
    p.add_argument("--json", action="store_true")


def cmd_bench_weighting(args: argparse.Namespace, home: Any) -> int:
    """Run the benchmark and print one line per seed and the mean gain."""
    # numpy here, not at module level: the CLI imports this module to register the command.
    import numpy as np

    from data_engine.bench.datasets import load_digits_dataset, load_sentiment_dataset

    ds = load_digits_dataset() if args.dataset == "digits" else load_sentiment_dataset()
    runs = [run_once(ds, model=args.model, noise=args.noise, seed=s) for s in range(args.seeds)]
    gain = float(np.mean([r.accuracy_weighted - r.accuracy_noisy for r in runs]))
    summary = {
        "dataset": ds.name, "model": args.model, "noise": args.noise,
        "accuracy_noisy": float(np.mean([r.accuracy_noisy for r in runs])),
        "accuracy_weighted": float(np.mean([r.accuracy_weighted for r in runs])),
        "accuracy_clean": float(np.mean([r.accuracy_clean for r in runs])),
        "mean_gain": gain,
        "helps": gain >= MIN_GAIN and all(r.accuracy_weighted >= r.accuracy_noisy for r in runs),
    }
    if args.json:
        print(json.dumps({"runs": [asdict(r) for r in runs], **summary}))
        return 0
    for r in runs:
        print(f"seed {r.seed}: flipped {r.flipped}, flagged {r.flagged} ({r.flagged_true} truly flipped); "
              f"test accuracy noisy {r.accuracy_noisy:.4f}, without flagged {r.accuracy_weighted:.4f}, "
              f"clean {r.accuracy_clean:.4f} ({r.seconds:.0f} s)")
    print(f"mean: noisy {summary['accuracy_noisy']:.4f}, without flagged {summary['accuracy_weighted']:.4f} "
          f"(gain {gain:+.4f}), clean {summary['accuracy_clean']:.4f}; helps (gain >= {MIN_GAIN} on "
          f"average, never worse): {summary['helps']}")
    return 0


def register_bench() -> None:
    """Register ``bench weighting`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("weighting", "retraining without flagged, unreviewed labels vs with them (test accuracy)",
                  add_arguments, cmd_bench_weighting)
