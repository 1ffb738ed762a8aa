"""The cold start: 100 clean labels over 10 classes and 1,200 unlabeled digits. `mine` used to crash
here (a member's internal validation split); it must queue mostly new examples to label."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_engine.cli import main
from data_engine.mine.selection import DEFAULT_STRATEGY
from data_engine.review.verdicts import latest_budget_split
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home


def test_cold_start_mines_and_queues_mostly_unlabeled_examples(tmp_path: Path, capsys) -> None:
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    rows = np.random.default_rng(0).permutation(len(y))[:1300]
    frame = pd.DataFrame(X[rows], columns=[f"px{i}" for i in range(64)])
    frame.insert(0, "id", [f"d{i}" for i in rows])
    frame["label"] = pd.Series(y[rows].astype(str), dtype=object)
    frame.loc[100:, "label"] = None  # 100 clean labels, 1,200 unlabeled
    home = make_home(tmp_path)  # the embedded digits config: served model = the RBF SVM
    frame.to_csv(home.landing / "first.csv", index=False)
    assert main(["--home", str(home.root), "ingest", str(home.landing / "first.csv")]) == 0
    assert main(["--home", str(home.root), "mine", "--budget", "100"]) == 0
    with open_warehouse(home) as con:
        queue = con.execute("SELECT given_label, selection, issue_types FROM review_queue").fetchdf()
        split = latest_budget_split(con)
    assert len(queue) == 100
    new = queue["given_label"].isna()
    assert new.sum() >= 90, queue["selection"].value_counts().to_dict()
    assert split["grow"] == new.sum() and split["budget"] == 100
    # The explore share (10 %) is there, and the rest of the new examples came from the default strategy.
    assert split["selection"].get("explore") == round(0.1 * split["grow"])
    assert split["selection"].get(DEFAULT_STRATEGY, 0) + split["selection"]["explore"] == split["grow"]
    capsys.readouterr()
    assert main(["--home", str(home.root), "review", "status"]) == 0
    assert "new examples" in capsys.readouterr().out


def test_an_unlabeled_example_flagged_as_a_fix_is_not_picked_again_as_new(tmp_path: Path) -> None:
    # Breast-cancer rows: 30 clean labels, 339 unlabeled; the outlier detector flags unlabeled rows
    # of the heavy-tailed features, and the strategy used to pick some of them again (the same example
    # twice in one queue, two of the budget's slots).
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer(as_frame=True)
    frame = data.frame.drop(columns="target").iloc[:369].copy()
    frame.columns = [f"f{i}" for i in range(frame.shape[1])]
    frame.insert(0, "sample_id", [f"s{i}" for i in range(len(frame))])
    frame["label"] = pd.Series(np.where(data.target[:369] == 1, "benign", "malignant"), dtype=object)
    frame.loc[30:, "label"] = None
    config = tmp_path / "engine.toml"
    config.write_text('[dataset]\nname = "bc"\nmodality = "tabular"\nid_column = "sample_id"\n'
                      f'label_column = "label"\nfeature_columns = {list(frame.columns[1:-1])!r}\n'
                      'classes = ["benign", "malignant"]\n'.replace("'", '"'))
    home = tmp_path / "home"
    assert main(["--home", str(home), "init", "--config", str(config)]) == 0
    frame.to_csv(tmp_path / "train.csv", index=False)
    assert main(["--home", str(home), "ingest", str(tmp_path / "train.csv")]) == 0
    assert main(["--home", str(home), "mine", "--budget", "40"]) == 0
    with open_warehouse(Home(home)) as con:
        queue = con.execute("SELECT example_id, selection, given_label FROM review_queue").fetchdf()
    assert ((queue["selection"] == "fix") & queue["given_label"].isna()).any()  # the case this is about
    assert len(queue) == 40
    assert queue["example_id"].is_unique, queue[queue["example_id"].duplicated(keep=False)].to_dict("records")
