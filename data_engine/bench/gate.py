"""``data-engine bench gate``: how often the gate makes the right call when the truth is known.

Real models, real paired structure: a generated tabular set (:func:`make_tabular_dataset`) is split
into a training set and a large pool. The champion is the engine's model trained on the training
labels with ``--noise`` of them flipped. Each candidate is trained on the same labels after a
review: some of the flipped labels corrected (truly better), or some correct labels wrongly
changed by a careless reviewer (truly worse); in both cases the candidate saw more reviewed
labels, as a retrained model does. The true difference is measured on the whole pool. Gold sets
of 100, 300 and 1,000 examples are drawn from the pool ``--draws`` times each, and the paired
gate and the strict gate (candidate >= champion exactly, classes within the tolerance) decide on
each draw from the models' real predictions. A right call promotes a truly better candidate and
refuses a truly worse one.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

GOLD_SIZES = (100, 300, 1000)
# Share of the champion's flipped labels a review corrected (> 0), or of its correct labels a
# careless review changed (< 0).
REVIEWS = (0.5, 0.25, 0.1, -0.05, -0.1, -0.2)
# The gates compared: (name, [gate] settings).
GATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("paired, alpha 0.05", {}), ("paired, alpha 0.2", {"alpha": 0.2}), ("strict", {"test": "strict"}))


@dataclass(frozen=True)
class GateRow:
    """One candidate at one gold size: the true difference and how often each gate promoted it."""

    candidate: str
    champion_accuracy: float
    true_difference: float
    gold_size: int
    draws: int
    # Share of draws each gate promoted the candidate: {gate name: share}, names as in GATES.
    promoted: dict[str, float]

    @property
    def truly_better(self) -> bool:
        """The candidate's pool accuracy is higher than the champion's."""
        return self.true_difference > 0

    def right(self, promoted: float) -> float:
        """Share of right calls given the share of draws that promoted."""
        return promoted if self.truly_better else 1.0 - promoted


def _review(noisy: Any, clean: Any, classes: list[str], share: float, seed: int) -> tuple[Any, int]:
    """Labels after a review of ``noisy`` (N,): correct ``share`` of the wrong ones, or (share < 0)
    wrongly change ``-share`` of the right ones. Returns the labels and how many were reviewed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = noisy.copy()
    pool = np.flatnonzero(noisy != clean) if share > 0 else np.flatnonzero(noisy == clean)
    picked = rng.choice(pool, size=int(round(abs(share) * len(pool))), replace=False)
    if share > 0:
        out[picked] = clean[picked]
    else:
        index = {c: i for i, c in enumerate(classes)}
        codes = np.array([index[c] for c in clean[picked]])
        out[picked] = np.asarray(classes, dtype=object)[(codes + rng.integers(1, len(classes), len(picked)))
                                                        % len(classes)]
    return out, len(picked)


def run_bench(*, model: str, train_rows: int, pool_rows: int, noise: float, draws: int, seed: int,
              n_classes: int = 10, gold_sizes: tuple[int, ...] = GOLD_SIZES, reviews: tuple[float, ...] = REVIEWS) -> list[GateRow]:
    """Train the champion and one candidate per review in ``reviews``; judge them on drawn gold sets."""
    import numpy as np

    from data_engine.bench.datasets import inject_noise, make_tabular_dataset
    from data_engine.mine.models import Schema, build_estimator, resolve_spec
    from data_engine.ship.evaluation import evaluate_predictions
    from data_engine.ship.gate import decide_promotion
    from data_engine.ship.fitting import fit_estimator, limited_threads
    from data_engine.ship.verdict import Provenance
    from data_engine.store.config import GateConfig

    ds = make_tabular_dataset(train_rows + pool_rows, n_classes=n_classes, seed=seed)
    classes = ds.classes
    X_train, X_pool = ds.frame.iloc[:train_rows].reset_index(drop=True), ds.frame.iloc[train_rows:].reset_index(drop=True)
    clean, y_pool = ds.labels[:train_rows], ds.labels[train_rows:].astype(str)
    noisy = inject_noise(clean, classes, rate=noise, kind="uniform", seed=seed)
    spec = resolve_spec(model, ds.modality, seed=seed)
    schema = Schema.from_mapping(ds.schema)

    def pool_predictions(labels: Any) -> Any:
        with limited_threads():
            est = fit_estimator(build_estimator(spec, schema), X_train, labels)
            return np.asarray(est.predict(X_pool)).astype(str)

    champ_pred = pool_predictions(noisy)
    champ_acc = float(np.mean(champ_pred == y_pool))
    gates = {name: GateConfig(min_gold=20, **settings) for name, settings in GATES}
    rng = np.random.default_rng(seed + 1)
    rows: list[GateRow] = []
    for i, share in enumerate(reviews):
        labels, n_reviewed = _review(noisy, clean, classes, share, seed + 10 + i)
        cand_pred = pool_predictions(labels)
        true_diff = float(np.mean(cand_pred == y_pool)) - champ_acc
        name = (f"{share:.0%} of flips corrected" if share > 0 else f"{-share:.0%} of right labels changed")
        # The champion saw the labels as landed; the candidate, those plus the review.
        seen = {"candidate_seen": Provenance(n_reviewed, 2), "champion_seen": Provenance(0, 1)}
        for size in gold_sizes:
            promoted = {g: 0 for g in gates}
            for _ in range(draws):
                idx = rng.choice(len(y_pool), size=size, replace=False)
                y, c, h = y_pool[idx], cand_pred[idx], champ_pred[idx]
                ce, he = evaluate_predictions(y, c, version=2), evaluate_predictions(y, h, version=1)
                for g, cfg in gates.items():
                    promoted[g] += decide_promotion(ce, he, cfg, pairs=(y, c, h), **seen).promote
            rows.append(GateRow(name, champ_acc, true_diff, size, draws, {g: k / draws for g, k in promoted.items()}))
    return rows


def table(rows: list[GateRow]) -> str:
    """The rows as a Markdown table: the share of right calls by each gate."""
    names = [g for g, _ in GATES]
    lines = ["| candidate | true accuracy difference | gold size | " + " | ".join(names) + " |",
             "|---|---|---|" + "---|" * len(names)]
    for r in rows:
        want = "promote" if r.truly_better else "refuse"
        lines.append(f"| {r.candidate} (should {want}) | {r.true_difference:+.4f} | {r.gold_size} | "
                     + " | ".join(f"{r.right(r.promoted[g]):.0%}" for g in names) + " |")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench gate``."""
    p.add_argument("--model", default="hgb", help="model spec as in [retrain] model (default hgb)")
    p.add_argument("--train-rows", type=int, default=3000)
    p.add_argument("--pool-rows", type=int, default=30000, help="rows the true accuracy is measured on")
    p.add_argument("--noise", type=float, default=0.3, help="share of the champion's labels flipped")
    p.add_argument("--classes", type=int, default=10, help="classes of the generated set (fewer: higher accuracy)")
    p.add_argument("--draws", type=int, default=200, help="gold sets drawn per candidate and size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")


def cmd_bench_gate(args: argparse.Namespace, home: Any) -> int:
    """Run the benchmark and print the table (and the mean share of right calls per gate and size)."""
    started = time.perf_counter()
    rows = run_bench(model=args.model, train_rows=args.train_rows, pool_rows=args.pool_rows, noise=args.noise,
                     draws=args.draws, seed=args.seed, n_classes=args.classes)
    summary = {}
    for size in GOLD_SIZES:
        at = [r for r in rows if r.gold_size == size]
        summary[size] = {g: sum(r.right(r.promoted[g]) for r in at) / len(at) for g, _ in GATES}
    if args.json:
        print(json.dumps({"rows": [asdict(r) for r in rows], "right_calls": summary,
                          "seconds": round(time.perf_counter() - started, 1)}))
        return 0
    print(f"{args.classes} classes; champion: pool accuracy {rows[0].champion_accuracy:.4f} "
          f"({args.noise:.0%} of its labels flipped); "
          "cells: share of right calls (promote a truly better candidate, refuse a truly worse one)")
    print(table(rows))
    for size, s in summary.items():
        print(f"gold {size}: right calls, mean over candidates: " + ", ".join(f"{g} {v:.0%}" for g, v in s.items()))
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


def register_bench() -> None:
    """Register ``bench gate`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("gate", "how often the paired and the strict gate promote a truly better candidate and refuse "
                  "a truly worse one (known truth, gold sizes 100/300/1,000)", add_arguments, cmd_bench_gate)
