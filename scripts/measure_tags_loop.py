"""Measure the tags loop on a bundled scikit-learn table turned into tags: `demo-loop`'s rounds
(mine -> review tasks in Label Studio's API semantics, in memory -> the simulated reviewer answering
from oracle.jsonl -> pull -> retrain -> paired gate) with 1.5 reviews per injected error, and the
share of the noisy-to-clean gap recovered in held-out exact match and micro-F1 (demo-loop's
comparison). Also where the reviews went and which wrong tag sets were left.

    PYTHONPATH=. python scripts/measure_tags_loop.py SET SEED [ROOT] [--keep]

SET: cancer, wine, diabetes, digits, sentences, generated (tests/multilabel_support.py::bundled_tags; the
sentences are read from $DATA_ENGINE_SENTIMENT_DIR, e.g. /work/shared/data/sentiment-sentences).
The run's home (ROOT/SETSEED, ROOT a new temporary directory if not given; about 170 MB) is removed
when the run ends, unless --keep is given: then its path is printed on stderr.
"""
import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_engine.demo import comparison  # noqa: E402
from data_engine.demo import loop as demo_loop  # noqa: E402
from data_engine.review import project  # noqa: E402
from data_engine.review.labelstudio.fake import FakeReviewClient  # noqa: E402
from data_engine.store.warehouse import open_warehouse  # noqa: E402
from tests import multilabel_support  # noqa: E402
from tests.homes import make_home  # noqa: E402


def measure(name: str, seed: int, home_dir: Path) -> dict:
    """Run the tags loop of set ``name`` at ``seed`` in a home made at ``home_dir``; its figures."""
    data, gold = multilabel_support.bundled_tags(name, seed=seed)
    features = [c for c in data.frame.columns if c not in ("id", "tags")]
    budget = int(1.5 * len(data.noisy))
    # The sentences are text (mining's "auto" embedding: e5-small); every other set is a table of numbers.
    inputs = ({"modality": "text", "text_column": "sentence", "feature_columns": []} if features == ["sentence"]
              else {"modality": "tabular", "feature_columns": features})
    config = {"dataset": {"name": name, **inputs, "task": "multilabel", "id_column": "id",
                          "label_column": "tags", "classes": data.tags},
              "mining": {"n_jobs": 1}, "retrain": {"min_new_labels": 10},
              "review": {"url": "http://127.0.0.1:9", "budget": (budget + 1) // 2}}
    home = make_home(home_dir, config)
    data.write(home.root)
    gold.write_gold(home.root)
    client = FakeReviewClient()
    client.close = lambda: None
    project.make_client = lambda home: client
    project.review_server = lambda home: "in memory"
    # Only the cheap model-centric alternatives (linear, k-NN): this measures the noisy, final and clean
    # figures, which the alternatives do not change (the same splits for every recipe), and the others
    # took most of a run's time.
    reads = comparison._reads
    comparison._reads = lambda spec, schema: spec.members in (("linear",), ("knn",)) and reads(spec, schema)
    started = time.time()
    final = demo_loop.run_demo(home, budget=budget, say=lambda line: print(line, file=sys.stderr))
    with open_warehouse(home, read_only=True) as con:
        force = dict(con.execute("SELECT example_id, label FROM current_labels WHERE NOT is_discarded").fetchall())
        queued = con.execute("SELECT run_id, example_id, issue_types FROM review_queue ORDER BY run_id, rank").fetchall()
    truth = {i: json.dumps(sorted(t), separators=(",", ":")) for i, t in data.truth.items()}
    left = sorted(i for i in data.noisy if force.get(i) != truth[i])
    seen = {e for _, e, _ in queued}
    figures = final["figures"]
    out = {"set": name, "seed": seed, "train": len(data.frame), "errors": len(data.noisy), "budget": budget,
           "reviewed": final["reviewed"], "rounds": final["rounds"], "left": len(left),
           "left_never_queued": sum(i not in seen for i in left), "seconds": round(time.time() - started)}
    for metric in ("accuracy", "micro_f1"):
        n, f, c = (figures[k][metric] for k in ("noisy", "final", "clean"))
        out[metric] = [round(n, 4), round(f, 4), round(c, 4), round((f - n) / (c - n), 3) if c != n else None]
    out["rounds_detail"] = [{k: r[k] for k in ("queued", "reviewed", "corrected")} for r in final["rounds_detail"]]
    # Per mining run: the queue by issue type, and how many of each were injected errors.
    by_type: dict = {}
    for run, e, types in queued:
        for t in types:
            hit = by_type.setdefault(f"run{run}:{t}", [0, 0])
            hit[0] += 1
            hit[1] += e in data.noisy
    out["queue_by_type"] = by_type
    return out


def main(argv: list[str]) -> int:
    """Measure, print the figures as one JSON line, and remove the home unless ``--keep``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set")
    parser.add_argument("seed", type=int)
    parser.add_argument("root", nargs="?", type=Path, help="directory to make the home in (default: a new temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the home (printed on stderr) instead of removing it")
    args = parser.parse_args(argv)
    root = args.root if args.root is not None else Path(tempfile.mkdtemp())
    home_dir = root / f"{args.set}{args.seed}"
    try:
        out = measure(args.set, args.seed, home_dir)
    finally:
        if args.keep:
            print(f"home kept at {home_dir}", file=sys.stderr)
        else:
            # Each home is about 170 MB: not left in /tmp run after run. A ROOT given stays; only the
            # home made in it goes (and the temporary root made here).
            shutil.rmtree(home_dir, ignore_errors=True)
            if args.root is None:
                shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
