"""``data-engine bench detect``: how well and how fast mining finds injected label errors.

Injects label noise at a seed into a dataset with known labels, ingests it into a temporary engine
home and runs the engine's own mining (:func:`data_engine.mine.run.run_mining`), then compares the
``label`` flags and the review queue with the truly flipped labels. The same data also goes through
the baseline: cleanlab's ``find_label_issues`` on 5-fold logistic-regression probabilities.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.bench.folders import bench_folder
from data_engine.bench.homes import make_home
from data_engine.bench.scores import BASELINE_FOLDS, detection_scores
from data_engine.store.home import Home

DATASETS = ("digits", "digits-files", "shapes-files", "sentiment", "tabular", "diabetes", "digit-tags", "ner", "boxes",
            "digit-boxes", "ner-conll")
NOISE_KINDS = ("uniform", "class-conditional")


def register_bench() -> None:
    """Add ``bench detect`` to the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("detect", "label-error detection: engine default vs cleanlab + logistic regression",
                  add_arguments, cmd_bench_detect)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``bench detect``."""
    p.add_argument("--dataset", choices=DATASETS, default="digits", help="digits (bundled), digits-files (the "
                   "digits as PNG files, with injected near copies), shapes-files (400 drawn shapes as PNG "
                   "files, with injected near copies), sentiment "
                   "(needs the shared sentiment sentences), tabular (generated; see --rows), diabetes (bundled; "
                   "a regression set with gross value errors, against cleanlab's CleanLearning), digit-tags (bundled "
                   "digits tagged by their properties, one tag added or removed, against cleanlab's multi-label "
                   "find_label_issues), ner (generated texts "
                   "with dropped, retyped and shifted entity spans, against cleanlab's token-classification call on "
                   "the same predictions, and a user's tagger's token probabilities landed as JSONL; see --rows), "
                   "boxes (generated drawn scenes with missing, shifted and swapped boxes, the built-in detector's "
                   "boxes and a good and a weaker detector's boxes landed as JSONL against cleanlab's "
                   "object-detection call on the same predictions; at most 500 scenes: --rows), digit-boxes (scenes "
                   "of the bundled handwritten digit scans with missing, shifted and swapped boxes, mined in an "
                   "engine home with the built-in detector and with a good detector's boxes as external predictions, "
                   "against cleanlab's call on the same predictions; at most 750 scenes: --rows), ner-conll (as ner, on "
                   "the first --rows sentences of the CoNLL/BIO file named by $DATA_ENGINE_NER_FILE)")
    p.add_argument("--rows", type=int, default=10_000, help="rows of the generated tabular set (default 10000)")
    p.add_argument("--noise", type=float, default=0.2, help="share of labels flipped (default 0.2)")
    p.add_argument("--noise-kind", choices=NOISE_KINDS, default="uniform",
                   help="uniform flips, or class-conditional (class pairs swapped)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise (and of the generated data)")
    p.add_argument("--model", default="auto", help="mining.model for the engine run (default auto)")
    p.add_argument("--embedding", default="auto", help="mining.embedding for the engine run (default auto)")
    p.add_argument("--embedding-cache", type=Path, default=default_embedding_cache(),
                   help="Parquet file keeping the benchmark's embeddings between runs (fresh homes), so a "
                   "repeated run does not re-embed; 'none' to embed every time (default %(default)s)")
    p.add_argument("--no-baseline", action="store_true", help="skip the baseline (it is slow on large sets)")
    p.add_argument("--keep", type=Path, default=None, help="keep the temporary engine home at this path")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def cmd_bench_detect(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``bench detect`` (the ``--home`` is not used: the benchmark makes its own)."""
    if args.dataset == "diabetes":  # numbers, not classes: data_engine.bench.detect_regression
        from data_engine.bench.detect_regression import format_regression_result, run_regression_detect_benchmark

        result = run_regression_detect_benchmark(noise=args.noise, seed=args.seed, model=args.model,
                                                 baseline=not args.no_baseline, keep=args.keep)
        print(json.dumps(result, indent=2) if args.json else format_regression_result(result))
        return 0
    if args.dataset in ("ner", "ner-conll"):  # entity spans: data_engine.bench.detect_ner
        from data_engine.bench.detect_ner import format_ner_result, run_ner_detect_benchmark
        from data_engine.bench.ner_corpus import ner_corpus_file

        corpus = ner_corpus_file() if args.dataset == "ner-conll" else None
        result = run_ner_detect_benchmark(rows=min(args.rows, 5000), noise=args.noise, seed=args.seed, keep=args.keep,
                                          corpus=corpus)
        print(json.dumps(result, indent=2) if args.json else format_ner_result(result))
        return 0
    if args.dataset == "boxes":  # box sets on images: data_engine.bench.detect_boxes
        from data_engine.bench.detect_boxes import format_boxes_result, run_boxes_detect_benchmark

        result = run_boxes_detect_benchmark(rows=min(args.rows, 500), noise=args.noise, seed=args.seed)
        print(json.dumps(result, indent=2) if args.json else format_boxes_result(result))
        return 0
    if args.dataset == "digit-boxes":  # box sets on real digit scans: data_engine.bench.detect_digit_boxes
        from data_engine.bench.detect_digit_boxes import format_digit_boxes_result, run_digit_boxes_benchmark

        result = run_digit_boxes_benchmark(rows=min(args.rows, 750), noise=args.noise, seed=args.seed, keep=args.keep)
        print(json.dumps(result, indent=2) if args.json else format_digit_boxes_result(result))
        return 0
    if args.dataset == "digit-tags":  # tag sets, not one class: data_engine.bench.detect_multilabel
        from data_engine.bench.detect_multilabel import run_multilabel_detect_benchmark
        from data_engine.bench.detect_regression import format_regression_result

        result = run_multilabel_detect_benchmark(noise=args.noise, seed=args.seed, model=args.model,
                                                 baseline=not args.no_baseline, keep=args.keep)
        print(json.dumps(result, indent=2) if args.json else format_regression_result(result))
        return 0
    cache = None if str(args.embedding_cache) == "none" else args.embedding_cache
    result = run_detect_benchmark(dataset=args.dataset, rows=args.rows, noise=args.noise, noise_kind=args.noise_kind,
                                  seed=args.seed, model=args.model, baseline=not args.no_baseline, keep=args.keep,
                                  embedding=args.embedding, embedding_cache=cache)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


def run_detect_benchmark(*, dataset: str = "digits", rows: int = 10_000, noise: float = 0.2,
                         noise_kind: str = "uniform", seed: int = 0, model: str = "auto", baseline: bool = True,
                         keep: Path | None = None, n_jobs: int = 2, embedding: str = "auto",
                         embedding_cache: Path | None = None) -> dict[str, Any]:
    """Run the benchmark; return its figures as a JSON-able dict (see :func:`format_result`).

    ``embedding_cache``: a Parquet file of embeddings read before mining and rewritten after it, so
    repeated runs (each in a fresh home) embed only content they have not seen.
    """
    import numpy as np
    import pandas as pd

    from data_engine.bench.datasets import inject_noise
    from data_engine.errors import EngineError
    from data_engine.mine.embedders.cache import export_embeddings, import_embeddings
    from data_engine.mine.run import run_mining
    from data_engine.stages import StageClock
    from data_engine.steps import ingest
    from data_engine.store.warehouse import open_warehouse

    if dataset not in DATASETS:
        raise EngineError(f"--dataset must be one of {', '.join(DATASETS)}")
    clock = StageClock(track_memory=True)
    with bench_folder(keep, "bench-detect-") as workdir:
        root = keep or workdir / "home"
        with clock.stage("generate"):
            data = load_dataset(dataset, rows=rows, seed=seed, folder=workdir / "files")
            noisy = inject_noise(data.labels, data.classes, rate=noise, kind=noise_kind, seed=seed)
            flipped = noisy != data.labels
        with clock.stage("write_file"):
            home = make_home(root, data, model=model, n_jobs=n_jobs, budget=max(1, int(flipped.sum())),
                             embedding=embedding)
            ids = np.char.add("ex", np.arange(len(noisy)).astype(str)).astype(object)
            path = write_batch(home, data, ids, noisy)
        cfg = home.config
        throughput = None
        if data.image_root is not None:
            from data_engine.bench.image_files import image_throughput

            # Cold, before mining: mining then reads the memoised vectors (its stages exclude this).
            with clock.stage("embed_images"):
                throughput = image_throughput(data.frame["image"])
        with open_warehouse(home) as con:
            with clock.stage("ingest"):
                ingested = ingest(con, home, path)
            if ingested.status != "ingested" or ingested.rows_ok != len(noisy):
                raise EngineError(f"benchmark batch not fully ingested: {ingested.status} {ingested.reason or ''}"
                                  f" ({ingested.rows_ok} of {len(noisy)} rows)")
            reused = import_embeddings(con, embedding_cache) if embedding_cache is not None else 0
            summary = run_mining(con, cfg, home=home, clock=clock)
            if embedding_cache is not None and summary.newly_embedded:
                export_embeddings(con, embedding_cache)
            flags = con.execute(
                "SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' AND is_issue",
                [summary.run_id]).fetchdf()["example_id"]
            copies = None
            if data.near_copies is not None:
                from data_engine.bench.image_files import near_copy_scores

                copies = near_copy_scores(con, summary.run_id, data.near_copies, ids)
            queue = con.execute("SELECT rank, example_id FROM review_queue WHERE run_id = ? ORDER BY rank",
                                [summary.run_id]).fetchdf()
        truth = pd.Series(flipped, index=ids)
        engine = detection_scores(truth, set(flags), queue["example_id"].tolist())
        engine["model_spec"] = summary.model_spec
        engine["noise_rate_estimate"] = summary.noise_rate
        engine["embedding"] = summary.embedding
        engine["embedded_rows"] = summary.newly_embedded
        engine["embedding_seconds"] = round(clock.seconds.get("embedding", 0.0), 2)
        engine["embeddings_from_cache"] = int(reused)
        base = None
        if baseline:
            with clock.stage("baseline"):
                base = run_baseline(data, noisy, truth, seed=seed, n_jobs=n_jobs)
    return {
        "dataset": dataset, "rows": int(len(noisy)), "classes": len(data.classes), "noise": noise,
        "noise_kind": noise_kind, "seed": seed, "flipped": int(flipped.sum()),
        "engine": engine, "baseline": base, "counts": summary.counts, "near_copies": copies,
        "images_per_second": throughput,
        "stages": {name: {"seconds": round(sec, 2), "peak_mib": round(clock.peak_mib.get(name, 0.0), 1)}
                   for name, sec in clock.seconds.items()},
        "total_seconds": round(clock.total_seconds, 2),
    }


def load_dataset(name: str, *, rows: int, seed: int, folder: Path | None = None) -> Any:
    """The named benchmark dataset (see :mod:`data_engine.bench.datasets`); image files go to ``folder``."""
    from data_engine.bench import datasets

    if name == "digits":
        return datasets.load_digits_dataset()
    if name == "digits-files":
        return datasets.load_digit_files_dataset(folder or Path(tempfile.mkdtemp(prefix="digit-files-")), seed=seed)
    if name == "shapes-files":
        return datasets.load_shape_files_dataset(folder or Path(tempfile.mkdtemp(prefix="shape-files-")), seed=seed)
    if name == "sentiment":
        return datasets.load_sentiment_dataset()
    if name in ("breast-cancer", "wine"):
        return datasets.load_sklearn_table(name)
    return datasets.make_tabular_dataset(rows, seed=seed)


def default_embedding_cache() -> Path:
    """Where benchmark embeddings are kept between runs: ``$XDG_CACHE_HOME/data-engine/bench-embeddings.parquet``."""
    import os

    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "data-engine" / "bench-embeddings.parquet"


def write_batch(home: Home, data: Any, ids: np.ndarray, labels: np.ndarray) -> Path:
    """Write the dataset with ``ids`` and ``labels`` (shape (N,)) as one Parquet file in landing/."""
    frame = data.frame.copy()
    frame.insert(0, "id", ids)
    frame["label"] = labels
    path = home.landing / f"{data.name}.parquet"
    frame.to_parquet(path, index=False)
    return path


def run_baseline(data: Any, noisy: np.ndarray, truth: pd.Series, *, seed: int, n_jobs: int) -> dict[str, Any]:
    """cleanlab ``find_label_issues`` on 5-fold logistic-regression (scikit-learn defaults) probabilities."""
    import numpy as np
    import pandas as pd
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from data_engine.mine.models import Schema, build_estimator
    from data_engine.tasks.oof import out_of_fold_probabilities
    from data_engine.mine.spec import ModelSpec

    started = time.perf_counter()
    estimator = build_estimator(ModelSpec(("linear",), data.modality, seed), Schema.from_mapping(data.schema))
    estimator.set_params(clf__C=1.0)
    index = {c: i for i, c in enumerate(data.classes)}
    y = pd.Series(noisy).map(index).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oof = out_of_fold_probabilities(estimator, data.frame, y, len(data.classes), folds=BASELINE_FOLDS,
                                        seed=seed, n_jobs=n_jobs)
    flags = find_label_issues(y, oof.probs, n_jobs=1)
    quality = get_label_quality_scores(y, oof.probs)
    ids = truth.index.to_numpy()
    ranked = ids[np.argsort(quality, kind="stable")].tolist()
    scores = detection_scores(truth, set(ids[flags]), ranked)
    scores["model_spec"] = "logistic regression (C=1) on the engine's linear features"
    scores["seconds"] = round(time.perf_counter() - started, 2)
    return scores


def format_result(r: dict[str, Any]) -> str:
    """A human-readable report of :func:`run_detect_benchmark`."""
    out = [f"bench detect: {r['dataset']}, {r['rows']} rows, {r['classes']} classes, "
           f"{r['noise']:.0%} {r['noise_kind']} noise (seed {r['seed']}): {r['flipped']} labels flipped", ""]
    out.append(f"{'':10s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'top-k prec':>10s}  model")
    for name in ("engine", "baseline"):
        s = r.get(name)
        if not s:
            continue
        out.append(f"{name:10s} {s['precision']:9.3f} {s['recall']:7.3f} {s['f1']:6.3f} {s['top_k_precision']:10.3f}  "
                   f"{s['model_spec']}")
    e = r["engine"]
    if e.get("embedding"):
        rate = (f", {e['embedded_rows'] / e['embedding_seconds']:.1f} rows/s"
                if e["embedded_rows"] and e.get("embedding_seconds") else "")
        out.append(f"\nembedding {e['embedding']}: {e['embedded_rows']} rows embedded in {e['embedding_seconds']:.1f} s"
                   f"{rate}; {e['embeddings_from_cache']} vectors from the benchmark cache")
    est = r["engine"].get("noise_rate_estimate")
    if est is not None:
        out.append(f"\nestimated noise rate (cleanlab joint): {est:.3f}")
    out.append(f"flagged per issue type: {json.dumps(r['counts'])}")
    if r.get("images_per_second"):
        out.append(f"image embedding: {r['images_per_second']:.0f} images per second (decode, resize, features)")
    if r.get("near_copies"):
        from data_engine.bench.image_files import format_near_copies

        out.append(format_near_copies(r["near_copies"]))
    out.append(f"\n{'stage':16s} {'seconds':>9s} {'peak MiB':>9s}")
    for name, s in r["stages"].items():
        out.append(f"{name:16s} {s['seconds']:9.2f} {s['peak_mib']:9.1f}")
    out.append(f"{'total':16s} {r['total_seconds']:9.2f}")
    return "\n".join(out)
