"""Numbers on text: a rating per review sentence, mined with the text members as regressors
(TF-IDF + ridge; naive Bayes has no regression form and is left out)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.steps import ingest_step
from data_engine.steps import mine_step
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

CONFIG = """\
[dataset]
name = "reviews"
modality = "text"
id_column = "id"
label_column = "stars"
text_column = "text"
task = "regression"
label_range = [0, 10]

[mining]
embedding = "tfidf"
n_jobs = 1
"""

GOOD = ["great", "excellent", "lovely", "superb", "fine"]
BAD = ["awful", "poor", "broken", "terrible", "meh"]


def test_wrong_ratings_of_sentences_rank_first(tmp_path: Path) -> None:
    home = make_home(tmp_path, CONFIG)
    rng = np.random.default_rng(0)
    rows = []
    for i in range(250):
        g, b = rng.integers(0, 4, size=2)
        words = [*rng.choice(GOOD, g), *rng.choice(BAD, b), "the", "product", "was"]
        rng.shuffle(words)
        rows.append((f"t{i}", " ".join(words), float(np.clip(5 + 1.2 * g - 1.2 * b + rng.normal(0, 0.5), 0, 10).round(1))))
    frame = pd.DataFrame(rows, columns=["id", "text", "stars"])
    # Gross errors: the rating mirrored on the scale, where that moves it by at least 4 stars.
    wrong = [i for i in range(250) if abs(10 - 2 * frame.loc[i, "stars"]) >= 4][:6]
    frame.loc[wrong, "stars"] = (10 - frame.loc[wrong, "stars"]).round(1)
    frame.to_csv(home.landing / "reviews.csv", index=False)
    ingest_step(home, [home.landing / "reviews.csv"])
    mined = mine_step(home)
    with open_warehouse(home) as con:
        ranked = [r[0] for r in con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                            "ORDER BY score, example_id", [mined.summary.run_id]).fetchall()]
        flagged = {r[0] for r in con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                             "AND is_issue", [mined.summary.run_id]).fetchall()}
    assert set(ranked[:len(wrong)]) == {f"t{i}" for i in wrong}
    assert {f"t{i}" for i in wrong} <= flagged
