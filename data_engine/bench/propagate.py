"""``data-engine bench propagate``: accuracy against reviews when reviewers' verdicts propagate.

A dataset with known labels is split into a clean test set (20 %, stratified) and a training set
that gets invalid rows (:mod:`data_engine.bench.invalid`; ``--invalid`` share of the training
rows, random labels) and ``--flip`` flipped labels. Three arms, each in its own engine home:

* ``ceiling``: the served model trained on the clean training rows with their true labels;
* ``confident learning``: the engine's loop without the look-alike detector (label, outlier,
  near-duplicate, uncertain detectors; ``propagate = "off"``);
* ``propagation``: the default detectors with ``propagate = "apply"``.

Each round mines (:func:`run_mining`), a simulated reviewer answers the first ``--per-round`` rows
of the queue from the known truth (in-process, recorded as a pull records reviews: ``review``
ledger events and verdicts; the true label, or a discard for an invalid row), and the served model (``[retrain] model``) is retrained on the labels
in force and scored on the test set. The served model is the one the engine builds from the arm's
config (``[retrain] model = "auto"`` with the resolved ``[mining] embedding``: e5-small on text by
default); each row is embedded once per benchmark run. Printed: test accuracy after each number of reviews, invalid
rows and wrong labels left in training, examples propagated.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and pandas load where used: the CLI starts without them
    import numpy as np
    import pandas as pd

from data_engine.store.home import Home

DATASETS = ("sentiment", "tabular", "digits")
ARMS = ("confident learning", "propagation")
TEST_SHARE = 0.2


def register_bench() -> None:
    """Add ``bench propagate`` to the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("propagate", "accuracy vs reviews: confident learning alone, with propagation, clean ceiling",
                  add_arguments, cmd_bench_propagate)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench propagate``."""
    p.add_argument("--dataset", choices=DATASETS, default="sentiment")
    p.add_argument("--rows", type=int, default=4000, help="rows of the generated tabular set (default 4000)")
    p.add_argument("--invalid", type=float, default=0.35, help="share of training rows that are invalid (default 0.35)")
    p.add_argument("--flip", type=float, default=0.10, help="share of valid training labels flipped (default 0.10)")
    p.add_argument("--reviews", type=int, default=400, help="review budget (default 400)")
    p.add_argument("--per-round", type=int, default=50, help="reviews per round (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--embedding", default="auto",
                   help='[mining] embedding of the arms and the served model (default "auto", as the engine)')
    p.add_argument("--served", default="auto", help='[retrain] model, the model scored (default "auto", as the engine)')
    p.add_argument("--arms", default=",".join(ARMS), help=f"arms to run, comma-separated (default: {','.join(ARMS)})")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_bench_propagate(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``bench propagate`` (makes its own temporary homes)."""
    result = run_propagate_bench(dataset=args.dataset, rows=args.rows, invalid=args.invalid, flip=args.flip,
                                 reviews=args.reviews, per_round=args.per_round, seed=args.seed,
                                 embedding=args.embedding, served=args.served,
                                 arms=tuple(a.strip() for a in args.arms.split(",") if a.strip()))
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


def make_bench_data(dataset: str, *, rows: int, invalid: float, flip: float, seed: int) -> dict[str, Any]:
    """The benchmark's data: ``train`` (input columns), ``given`` labels, ``truth`` (None = invalid),
    ``kind`` per training row, ``test`` / ``test_labels``, and the dataset description."""
    import numpy as np
    import pandas as pd
    from sklearn.model_selection import train_test_split

    from data_engine.bench import invalid as inv
    from data_engine.bench.datasets import inject_noise
    from data_engine.bench.detect import load_dataset
    from data_engine.errors import EngineError

    if not 0.0 <= invalid < 0.9 or not 0.0 <= flip < 0.5:
        raise EngineError("bench propagate: need 0 <= --invalid < 0.9 and 0 <= --flip < 0.5")
    data = load_dataset(dataset, rows=rows, seed=seed)
    rng = np.random.default_rng(seed)
    idx_train, idx_test = train_test_split(np.arange(len(data.labels)), test_size=TEST_SHARE, random_state=seed,
                                           stratify=data.labels)
    clean = data.frame.iloc[idx_train].reset_index(drop=True)
    truth = data.labels[idx_train]
    given = inject_noise(truth, data.classes, rate=flip, kind="uniform", seed=seed)
    n_bad = int(round(invalid / (1.0 - invalid) * len(clean)))
    if data.modality == "text":
        vocab = sorted({w for s in clean[data.text_column] for w in str(s).lower().split() if w.isalpha()})
        texts, kinds = inv.invalid_text(n_bad, rng, vocab)
        bad = pd.DataFrame({data.text_column: texts})
    elif data.modality == "image":
        bad, kinds = inv.invalid_images(n_bad, rng, list(clean.columns), float(np.nanmax(clean.to_numpy())))
    else:
        numeric = [c for c, k in data.schema.items() if k == "numeric"]
        bad, kinds = inv.invalid_readings(n_bad, rng, clean, numeric)
    bad_labels = np.asarray(data.classes, dtype=object)[rng.integers(0, len(data.classes), n_bad)]
    order = rng.permutation(len(clean) + n_bad)
    train = pd.concat([clean, bad[clean.columns]], ignore_index=True).iloc[order].reset_index(drop=True)
    return {
        "data": data, "train": train,
        "given": np.concatenate([given, bad_labels])[order],
        "truth": np.concatenate([truth, np.full(n_bad, None, dtype=object)])[order],
        "kind": np.concatenate([np.where(given != truth, "flipped", "clean").astype(object), kinds])[order],
        "clean_train": clean, "clean_truth": truth,
        # Where each clean row sits in ``train`` (the inverse of the shuffle).
        "clean_rows": np.argsort(order)[: len(clean)],
        "test": data.frame.iloc[idx_test].reset_index(drop=True), "test_labels": data.labels[idx_test],
    }


def run_propagate_bench(*, dataset: str = "sentiment", rows: int = 4000, invalid: float = 0.35, flip: float = 0.10,
                        reviews: int = 400, per_round: int = 50, seed: int = 0, embedding: str = "auto",
                        served: str = "auto", arms: tuple[str, ...] = ARMS) -> dict[str, Any]:
    """Run the ceiling and ``arms``; return a JSON-able dict (see :func:`format_result`)."""
    import pandas as pd

    from data_engine.errors import EngineError
    from data_engine.mine.embedders import configured_embedding

    if set(arms) - set(ARMS):
        raise EngineError(f"--arms: choose from {', '.join(ARMS)}")
    started = time.perf_counter()
    b = make_bench_data(dataset, rows=rows, invalid=invalid, flip=flip, seed=seed)
    data = b["data"]
    workdir = Path(tempfile.mkdtemp(prefix="bench-propagate-"))
    try:
        # The served model is the one the engine builds from a home's config ([retrain] model = "auto"
        # with the resolved [mining] embedding: on text, the e5-small member with the TF-IDF ones).
        settings = {"per_round": per_round, "embedding": embedding, "served": served}
        cfg = _bench_home(workdir / "ceiling", data, **settings).config
        _embed_once(b, cfg)
        ceiling = served_accuracy(cfg, data, b["clean_train"], b["clean_truth"], b["test"], b["test_labels"])
        results = {arm: _run_arm(workdir / arm.replace(" ", "-"), b, arm, reviews=reviews, per_round=per_round,
                                 seed=seed, settings=settings) for arm in arms}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    kinds = pd.Series(b["kind"]).value_counts().to_dict()
    return {"dataset": dataset, "train_rows": len(b["train"]), "test_rows": len(b["test"]),
            "invalid_share": invalid, "flip": flip, "kinds": {str(k): int(v) for k, v in kinds.items()},
            "seed": seed, "embedding": configured_embedding(cfg), "served": served,
            "ceiling": round(ceiling, 4),
            "arms": results, "seconds": round(time.perf_counter() - started, 1)}


def _bench_home(root: Path, data: Any, *, per_round: int, embedding: str, served: str, arm: str | None = None) -> Home:
    """An engine home for ``data`` with the served model ``served``; for an ``arm``, its detectors and policy."""
    from data_engine.bench.homes import make_home

    home = make_home(root, data, model="auto", n_jobs=1, budget=per_round, embedding=embedding)
    text = home.config_path.read_text(encoding="utf-8") + f'\n[retrain]\nmodel = "{served}"\n'
    if arm is not None:
        extra = 'detectors = ["label", "outlier", "near_duplicate", "uncertain"]\n' if arm == ARMS[0] else ""
        text = text.replace("[mining]\n", "[mining]\n" + extra)
        policy = "off" if arm == ARMS[0] else "apply"
        text = text.replace("[review]\n", f'[review]\npropagate = "{policy}"\n')
    home.config_path.write_text(text, encoding="utf-8")
    return Home(root.resolve())


def _embed_once(b: dict[str, Any], cfg: Any) -> None:
    """Attach the configured per-row embedding to the training and test rows (``b`` gains
    ``train_vectors``), so the ceiling, every arm and every round reuse one embedding of each row."""
    import pandas as pd

    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN, get_embedder
    from data_engine.mine.embedders.cache import embed_in_batches
    from data_engine.ship.fitting import limited_threads

    embedder = get_embedder(configured_embedding(cfg))
    b["train_vectors"] = None
    if not embedder.per_row:
        return
    columns = embedder.input_columns(b["data"].schema)
    with limited_threads():
        train = embed_in_batches(embedder, b["train"], columns)
        test = embed_in_batches(embedder, b["test"], columns)
    b["train_vectors"] = (embedder.cache_key, columns, train)
    b["test"] = b["test"].assign(**{EMBEDDING_COLUMN: pd.Series(list(test), dtype=object)})
    clean = train[b["clean_rows"]]
    b["clean_train"] = b["clean_train"].assign(**{EMBEDDING_COLUMN: pd.Series(list(clean), dtype=object)})


def served_accuracy(cfg: Any, data: Any, X: pd.DataFrame, y: np.ndarray, test: pd.DataFrame,
                    test_labels: np.ndarray) -> float:
    """Test accuracy of the served model the engine builds from ``cfg`` (``[retrain] model``), trained on ``X``, ``y``."""
    import numpy as np

    from data_engine.ship.fitting import build_estimator, fit_estimator, limited_threads

    model, _ = build_estimator(cfg, data.schema, n_rows=len(y))
    with limited_threads():
        fitted = fit_estimator(model, X.reset_index(drop=True), np.asarray(y, dtype=object).astype(str))
        return float((fitted.predict(test) == test_labels).mean())


def _run_arm(root: Path, b: dict[str, Any], arm: str, *, reviews: int, per_round: int, seed: int,
             settings: dict[str, Any]) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from data_engine.bench.detect import write_batch
    from data_engine.mine.propagate import propagation_report
    from data_engine.mine.run import run_mining
    from data_engine.review.pull import record_verdicts
    from data_engine.ship.training import load_training_set
    from data_engine.steps import ingest
    from data_engine.store.warehouse import open_warehouse

    data = b["data"]
    home = _bench_home(root, data, **settings, arm=arm)
    ids = np.char.add("ex", np.arange(len(b["given"])).astype(str)).astype(object)
    frame_data = type(data)(data.name, data.modality, b["train"], b["given"], data.schema, data.text_column)
    truth = pd.Series(b["truth"], index=ids)
    kind = pd.Series(b["kind"], index=ids)
    curve, done, mining_s, lookalike, embedded = [], 0, 0.0, {}, 0
    with open_warehouse(home) as con:
        ingest(con, home, write_batch(home, frame_data, ids, b["given"]))
        _import_vectors(con, root / "vectors.parquet", ids, b["train_vectors"])
        while True:
            ts = load_training_set(con, home.config)
            acc = served_accuracy(home.config, data, ts.X, ts.y, b["test"], b["test_labels"])
            left = kind.reindex(ts.example_ids)
            wrong = int((left == "flipped").sum() - (pd.Series(ts.y, index=ts.example_ids) == truth.reindex(
                ts.example_ids)).where(left == "flipped", False).sum())
            prop = con.execute("SELECT example_id, label FROM current_labels WHERE source = 'propagated'").fetchdf()
            propagated = len(prop)
            # Propagated verdicts that match the truth (a discard of an invalid row, or the true label).
            right = int((prop["label"].astype(object).fillna("<discard>").to_numpy()
                         == truth.reindex(prop["example_id"]).astype(object).fillna("<discard>").to_numpy()).sum())
            curve.append({"reviews": done, "accuracy": round(acc, 4), "invalid_left": int((~left.isin(["clean", "flipped"])).sum()),
                          "wrong_labels_left": wrong, "propagated": propagated,
                          "propagated_right": right, "lookalike": lookalike})
            if done >= reviews:
                break
            t0 = time.perf_counter()
            summary = run_mining(con, home.config, home=home)
            mining_s += time.perf_counter() - t0
            embedded += summary.newly_embedded
            found = summary.detector_summaries.get("lookalike", {})
            lookalike = {k: found.get(k) for k in ("verdicts", "discarded", "threshold", "estimated_precision",
                                                   "heldout_auc", "flagged", "asked", "copies")}
            lookalike["fix"] = summary.budget_split.get("fix") if summary.budget_split else None
            lookalike["rates"] = summary.budget_split.get("confirmation_rates") if summary.budget_split else None
            queue = con.execute("SELECT run_id, example_id, example_version, issue_types, given_label FROM review_queue "
                                "WHERE run_id = ? ORDER BY rank LIMIT ?", [summary.run_id, min(per_round, reviews - done)]).fetchdf()
            if queue.empty:
                break
            # Recorded as a pull records real reviews, so the budget split measures each issue type.
            record_verdicts(con, queue, list(truth.reindex(queue["example_id"]).to_numpy(dtype=object)), "bench-reviewer")
            done += len(queue)
        report = propagation_report(con)
    audited = sum(r["reviewed"] for r in report)
    agreed = sum(r["agreed"] for r in report)
    return {"curve": curve, "mining_seconds": round(mining_s, 1), "newly_embedded": embedded, "propagations": len(report),
            "audited": audited, "measured_precision": round(agreed / audited, 4) if audited else None}


def _import_vectors(con: Any, path: Path, ids: np.ndarray, vectors: tuple[str, list[str], np.ndarray] | None) -> None:
    """Put the bench's one embedding of the training rows into the arm's warehouse (through the
    engine's own import), so mining reads them instead of embedding every row again."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_engine.mine.embedders.cache import import_embeddings

    if vectors is None:
        return
    key, columns, X = vectors
    hashes = con.execute("SELECT example_id, feature_hash FROM current_examples").fetchdf().set_index("example_id")
    n, d = X.shape
    offsets = pa.array(np.arange(0, n * d + 1, d, dtype=np.int32))
    pq.write_table(pa.table({"embedder": [key] * n, "columns": [json.dumps(list(columns))] * n,
                             "content_hash": pa.array(hashes["feature_hash"].reindex(ids).to_numpy(), pa.uint64()),
                             "vector": pa.ListArray.from_arrays(offsets, pa.array(X.ravel(), pa.float32()))}), path)
    import_embeddings(con, path)


def format_result(r: dict[str, Any]) -> str:
    """The benchmark as a table: accuracy (and what is left in training) per number of reviews."""
    out = [f"bench propagate: {r['dataset']} (embedding {r['embedding']}, served model {r['served']}), {r['train_rows']} training rows ({json.dumps(r['kinds'])}), "
           f"{r['test_rows']} clean test rows, seed {r['seed']}; {r['seconds']} s",
           f"clean ceiling (served model on the clean training rows): {r['ceiling']:.4f}", "",
           f"{'arm':20s} {'reviews':>7s} {'accuracy':>8s} {'gap':>6s} {'invalid left':>12s} {'wrong labels':>12s} "
           f"{'propagated':>10s} {'right':>6s}"]
    for arm, a in r["arms"].items():
        for c in a["curve"]:
            out.append(f"{arm:20s} {c['reviews']:7d} {c['accuracy']:8.4f} {c['accuracy'] - r['ceiling']:+6.3f} "
                       f"{c['invalid_left']:12d} {c['wrong_labels_left']:12d} {c['propagated']:10d} "
                       f"{c.get('propagated_right', 0):6d}")
        if a["propagations"]:
            out.append(f"{'':20s} {a['propagations']} propagations; audited and reviewed {a['audited']}, "
                       f"measured precision {a['measured_precision']}")
    return "\n".join(out)
