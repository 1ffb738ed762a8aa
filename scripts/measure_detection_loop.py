"""Measure the detection loop on drawn scenes: gold mAP@0.5 of the baseline on the labels as landed,
after three rounds with the simulated reviewer (in-memory Label Studio) and on the true labels.

    PYTHONPATH=. python scripts/measure_detection_loop.py SEED
"""
import json, sys, time, shutil
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import pandas as pd
from tests.homes import make_home
from data_engine.demo.drawn_boxes import make_scenes, inject_box_errors, write_scenes, write_oracle, CLASSES
from data_engine.steps import ingest_step, mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.push import push_queue
from data_engine.review.pull import pull_verdicts
from data_engine.review.simulate import simulate_reviews
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.tasks import task_for
from data_engine.tasks.box_estimator import BoxDetector
from data_engine.tasks.boxes import canonical
seed = int(sys.argv[1]) if len(sys.argv) > 1 else 0
import tempfile
root = Path(tempfile.mkdtemp()) / f"m{seed}"; shutil.rmtree(root, ignore_errors=True)
cfg = {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id", "label_column": "boxes",
                   "image_column": "image", "feature_columns": [], "classes": list(CLASSES)},
       "review": {"budget": 40}, "gate": {"metric": "map50"}, "mining": {"n_jobs": 1, "seed": seed}}
home = make_home(root, cfg)
scenes = inject_box_errors(make_scenes(200, seed=100 + seed), rate=0.3, seed=200 + seed)
gold = make_scenes(80, seed=300 + seed)
ingest_step(home, [write_scenes(home.landing, scenes, prefix="s", name="train")])
ingest_step(home, [write_scenes(home.landing / "gold", gold, prefix="g", name="gold", truth=True)], gold=True)
write_oracle(home.root / "oracle.jsonl", scenes, prefix="s")
task = task_for(home.config.dataset)
gold_frame = pd.DataFrame({"image": [str(home.landing / "gold" / f"images/g{i:04d}.png") for i in range(len(gold))]})
gold_y = [canonical(s.truth) for s in gold]
def fit_eval(labels):
    frame = pd.DataFrame({"image": [str(home.landing / f"images/s{i:04d}.png") for i in range(len(scenes))]})
    det = BoxDetector(image_column="image").fit(frame, labels)
    return task.metrics(gold_y, det.predict(gold_frame), list(CLASSES))["map50"]
noisy = fit_eval([canonical(s.given) for s in scenes])
clean = fit_eval([canonical(s.truth) for s in scenes])
client = FakeReviewClient(); reviews = 0
for rnd in range(3):
    mine_step(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
    if not pushed.sent: break
    sim = simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), task), list(CLASSES), accuracy=0.98, label_task=task, seed=rnd)
    reviews += sim.answered
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
with open_warehouse(home) as con:
    force = dict(con.execute("SELECT example_id, label FROM current_labels").fetchall())
after = fit_eval([force[f"s{i:04d}"] for i in range(len(scenes))])
errors_left = sum(force[f"s{i:04d}"] != canonical(s.truth) for i, s in enumerate(scenes))
print(json.dumps({"seed": seed, "errors": sum(bool(s.error) for s in scenes), "reviews": reviews, "errors_left": errors_left,
                  "map50_noisy": round(noisy, 4), "map50_after": round(after, 4), "map50_clean": round(clean, 4)}))
