"""``data-engine bench served``: the served model through the loop against the model-centric baseline.

A dataset with known labels is split into a clean test set (20 %, stratified) and a training set
with ``--flip`` of its labels flipped (seeded; the truth kept aside). In one engine home with the
default config (``[retrain] model = "auto"``, the resolved ``[mining] embedding``), each round
trains the served model as ``data-engine train`` does (candidates scored out of fold, the best
trained), scores it on the test set, mines, and a simulated reviewer answers the first
``--per-round`` queue rows from the truth (recorded as a pull records reviews).

Printed beside it, from the same run: the model-centric baseline, a plain logistic regression
(scikit-learn defaults) on the same embedding (the stored e5 vectors on text; standardised input
columns where there is no per-row embedding), trained on the labels as landed and on the true labels.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from data_engine.store.home import Home

DATASETS = ("sentiment", "digits", "breast-cancer", "wine", "tabular")


def register_bench() -> None:
    """Add ``bench served`` to the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("served", "the served model after each round of review vs logistic regression on the same embedding",
                  add_arguments, cmd_bench_served)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench served``."""
    p.add_argument("--dataset", choices=DATASETS, default="sentiment")
    p.add_argument("--rows", type=int, default=4000, help="rows of the generated tabular set (default 4000)")
    p.add_argument("--flip", type=float, default=0.2, help="share of training labels flipped (default 0.2)")
    p.add_argument("--reviews", type=int, default=400, help="review budget (default 400)")
    p.add_argument("--per-round", type=int, default=100, help="reviews per round (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_bench_served(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``bench served`` (makes its own temporary home)."""
    result = run_served_bench(dataset=args.dataset, rows=args.rows, flip=args.flip, reviews=args.reviews,
                              per_round=args.per_round, seed=args.seed)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


def baseline_accuracy(train: Any, y: Any, test: Any, test_labels: Any, schema: dict[str, str]) -> float:
    """Test accuracy of plain logistic regression (scikit-learn defaults, ``max_iter`` raised) on the
    attached embedding when there is one, else on the standardised numeric input columns."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from data_engine.mine.embedders.base import EMBEDDING_COLUMN
    from data_engine.ship.fitting import limited_threads

    def matrix(frame: Any) -> Any:
        if EMBEDDING_COLUMN in frame.columns:
            return np.stack(frame[EMBEDDING_COLUMN].to_numpy())
        return frame[[c for c, k in schema.items() if k == "numeric"]].to_numpy(dtype=float)

    model = LogisticRegression(max_iter=5000)
    if EMBEDDING_COLUMN not in train.columns:
        model = make_pipeline(StandardScaler(), model)
    with limited_threads():
        model.fit(matrix(train), np.asarray(y, dtype=object).astype(str))
        return float((model.predict(matrix(test)) == np.asarray(test_labels).astype(str)).mean())


def run_served_bench(*, dataset: str = "sentiment", rows: int = 4000, flip: float = 0.2, reviews: int = 400,
                     per_round: int = 100, seed: int = 0) -> dict[str, Any]:
    """Run the loop on ``dataset``; return a JSON-able dict (see :func:`format_result`)."""
    import numpy as np
    import pandas as pd

    from data_engine.bench.detect import write_batch
    from data_engine.bench.propagate import _bench_home, _embed_once, _import_vectors, make_bench_data
    from data_engine.mine.candidates import ServedChoice
    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.run import run_mining
    from data_engine.review.pull import record_verdicts
    from data_engine.ship.fitting import limited_threads
    from data_engine.ship.registry import load_model
    from data_engine.ship.training import train_candidate
    from data_engine.steps import ingest
    from data_engine.store.warehouse import open_warehouse

    started = time.perf_counter()
    b = make_bench_data(dataset, rows=rows, invalid=0.0, flip=flip, seed=seed)
    data = b["data"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-served-"))
    curve: list[dict[str, Any]] = []
    try:
        home = _bench_home(workdir / "home", data, per_round=per_round, embedding="auto", served="auto")
        _embed_once(b, home.config)
        train_frame = b["train"]
        if b["train_vectors"] is not None:
            from data_engine.mine.embedders.base import EMBEDDING_COLUMN

            train_frame = train_frame.assign(**{EMBEDDING_COLUMN: pd.Series(list(b["train_vectors"][2]), dtype=object)})
        lr_noisy = baseline_accuracy(train_frame, b["given"], b["test"], b["test_labels"], data.schema)
        lr_true = baseline_accuracy(train_frame, b["truth"], b["test"], b["test_labels"], data.schema)
        ids = np.char.add("ex", np.arange(len(b["given"])).astype(str)).astype(object)
        truth = pd.Series(b["truth"], index=ids)
        frame_data = type(data)(data.name, data.modality, b["train"], b["given"], data.schema, data.text_column)
        done = 0
        with open_warehouse(home) as con:
            ingest(con, home, write_batch(home, frame_data, ids, b["given"]))
            _import_vectors(con, workdir / "vectors.parquet", ids, b["train_vectors"])
            while True:
                result = train_candidate(con, home)
                model = load_model(home, result.record)
                with limited_threads():
                    acc = float((model.predict(b["test"]).astype(str) == b["test_labels"].astype(str)).mean())
                choice = ServedChoice.from_dict(result.record.params["served_choice"])
                wrong = int(con.execute(
                    "SELECT count(*) FROM current_labels cl JOIN (SELECT unnest(?::VARCHAR[]) AS example_id, "
                    "unnest(?::VARCHAR[]) AS truth) t USING (example_id) WHERE cl.label IS DISTINCT FROM t.truth",
                    [list(ids), [str(t) for t in b["truth"]]]).fetchone()[0])
                curve.append({"reviews": done, "served": choice.chosen, "accuracy": round(acc, 4),
                              "wrong_labels_left": wrong,
                              "candidates": {c.name: round(c.metric(choice.metric), 4) for c in choice.candidates}})
                if done >= reviews:
                    break
                summary = run_mining(con, home.config, home=home)
                queue = con.execute("SELECT run_id, example_id, example_version, issue_types, given_label "
                                    "FROM review_queue WHERE run_id = ? ORDER BY rank LIMIT ?",
                                    [summary.run_id, min(per_round, reviews - done)]).fetchdf()
                if queue.empty:
                    break
                record_verdicts(con, queue, list(truth.reindex(queue["example_id"]).to_numpy(dtype=object)),
                                "bench-reviewer")
                done += len(queue)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"dataset": dataset, "train_rows": len(b["train"]), "test_rows": len(b["test"]), "flip": flip,
            "seed": seed, "flipped": int((b["kind"] == "flipped").sum()),
            "embedding": configured_embedding(home.config),
            "lr_noisy": round(lr_noisy, 4), "lr_true": round(lr_true, 4), "curve": curve,
            "seconds": round(time.perf_counter() - started, 1)}


def format_result(r: dict[str, Any]) -> str:
    """The benchmark as a table: the served model's test accuracy per number of reviews, beside the baseline."""
    out = [f"bench served: {r['dataset']} (embedding {r['embedding']}), {r['train_rows']} training rows with "
           f"{r['flipped']} flipped labels, {r['test_rows']} clean test rows, seed {r['seed']}; {r['seconds']} s",
           f"logistic regression on the same embedding: labels as landed {r['lr_noisy']:.4f}, "
           f"true labels {r['lr_true']:.4f}", "",
           f"{'reviews':>7s} {'wrong left':>10s} {'accuracy':>8s} {'vs LR noisy':>11s} {'vs LR true':>10s}  served (OOF candidates)"]
    for c in r["curve"]:
        cands = ", ".join(f"{k} {v:.3f}" for k, v in c["candidates"].items())
        out.append(f"{c['reviews']:7d} {c['wrong_labels_left']:10d} {c['accuracy']:8.4f} "
                   f"{c['accuracy'] - r['lr_noisy']:+11.4f} {c['accuracy'] - r['lr_true']:+10.4f}  {c['served']} ({cands})")
    return "\n".join(out)
