"""Measure the numbers loop (`tests/ship/test_loop_regression.py::run_loop`: a fifth kept as gold,
15 % gross value errors in the rest, in-memory Label Studio, perfect simulated reviewer, 1.5
reviews per injected error split equally over the rounds) on one set and seed: MAE on gold as
landed, on the true labels and after the loop, and the share of the gap closed.

    PYTHONPATH=. python scripts/measure_numbers_loop.py SET SEED [ROOT]

SET: diabetes (3 rounds), wine (alcohol from the other 12; 3 rounds), iris (petal width from the
other 3; 3 rounds), friedman2 (600 generated rows; 3 rounds), friedman3 (700 generated rows, the
same rows for every seed as in the test; 1 round). SEED draws the injected errors (and the rows of
friedman2).
"""
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from data_engine.bench.detect_regression import load_diabetes_frame  # noqa: E402
from data_engine.store.warehouse import open_warehouse  # noqa: E402
from tests.ship.test_loop_regression import _wine_alcohol, run_loop  # noqa: E402


def load(name: str, seed: int) -> tuple[pd.DataFrame, np.ndarray, int]:
    """(inputs, target, rounds) of a numbers set."""
    from sklearn import datasets

    if name == "diabetes":
        return (*load_diabetes_frame(), 3)
    if name == "wine":
        return (*_wine_alcohol(), 3)
    if name == "iris":
        data = datasets.load_iris(as_frame=True).data
        data = data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
        return data.drop(columns=["petal_width"]), data["petal_width"].to_numpy(float), 3
    if name == "friedman2":
        X, y = datasets.make_friedman2(600, noise=10.0, random_state=20 + seed)
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]), y, 3
    if name == "friedman3":
        X, y = datasets.make_friedman3(700, noise=0.1, random_state=11)
        return pd.DataFrame(X, columns=[f"x{i}" for i in range(4)]), y, 1
    raise KeyError(f"no numbers set {name!r} (diabetes, wine, iris, friedman2, friedman3)")


name, seed = sys.argv[1], int(sys.argv[2])
root = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(tempfile.mkdtemp())
X, y, rounds = load(name, seed)
started = time.time()
result = run_loop(root / f"{name}{seed}", X, y, seed=seed, rounds=rounds)
with open_warehouse(result["home"], read_only=True) as con:
    queued = con.execute("SELECT selection, count(*) FROM review_queue GROUP BY selection").fetchall()
out = {"set": name, "seed": seed, "rounds": rounds, "errors": result["injected"], "reviewed": result["reviews"],
       "mae": [round(result[k], 4) for k in ("noisy_mae", "final_mae", "clean_mae")],
       "gap": round(result["recovered"], 3), "queued_by_selection": dict(queued),
       "seconds": round(time.time() - started)}
print(json.dumps(out))
