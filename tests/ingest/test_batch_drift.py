"""Drift per landed batch through `ingest`: stored, given by `ingest --json`, shown in `status`, and
the newest-looking rows of a drifted batch mined as `drift` issues."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests import homes

CONFIG = """
[dataset]
name = "plans"
modality = "tabular"
label_column = "churned"
id_column = "id"
feature_columns = ["height_m", "weight", "age", "plan"]
classes = ["yes", "no"]

[mining]
model = "linear"
"""


def _rows(n: int, seed: int, start: int) -> pd.DataFrame:
    """``n`` rows of one fixed distribution; the label depends on weight and plan."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "id": [f"r{start + i}" for i in range(n)],
        "height_m": rng.normal(1.7, 0.1, n).round(3),
        "weight": rng.normal(70, 10, n).round(1),
        "age": rng.integers(18, 80, n),
        "plan": rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2]),
    })
    frame["churned"] = np.where((frame["weight"] > 72) ^ (frame["plan"] == "basic"), "yes", "no")
    return frame


def _ingest_json(home: Home, frame: pd.DataFrame, name: str, capsys: pytest.CaptureFixture[str]) -> dict:
    path = home.landing / name
    frame.to_csv(path, index=False)
    capsys.readouterr()
    assert main(["--home", str(home.root), "ingest", "--json", str(path)]) == 0
    [result] = json.loads(capsys.readouterr().out)
    return result


@pytest.fixture()
def home(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Home:
    home = homes.make_home(tmp_path, CONFIG)
    first = _ingest_json(home, _rows(600, 0, 0), "train.csv", capsys)
    assert first["drift"] is None  # nothing in force to compare the first batch with
    return home


def test_unit_change_is_flagged_naming_the_column(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    batch = _rows(200, 1, 10_000)
    batch["weight"] = batch["weight"] * 1000  # kilograms -> grams
    drift = _ingest_json(home, batch, "grams.csv", capsys)["drift"]
    assert drift["drifted"] is True
    assert drift["columns"] == ["weight"]
    assert drift["auc"] > 0.9 and drift["labels_compared"] is True
    weight = next(c for c in drift["per_column"] if c["column"] == "weight")
    assert weight["p_adjusted"] < 0.05 and weight["distance"] > 1000
    capsys.readouterr()
    assert main(["--home", str(home.root), "status"]) == 0
    out = capsys.readouterr().out
    assert "drifted: weight" in out and "AUC" in out


def test_new_category_in_unlabeled_batch_is_named(home: Home, capsys: pytest.CaptureFixture[str]) -> None:
    batch = _rows(200, 2, 20_000).drop(columns="churned")
    batch.loc[:29, "plan"] = "enterprise"
    drift = _ingest_json(home, batch, "enterprise.csv", capsys)["drift"]
    assert drift["drifted"] is True and "plan" in drift["columns"]
    plan = next(c for c in drift["per_column"] if c["column"] == "plan")
    assert plan["new_categories"] == ["enterprise"]
    assert drift["labels_compared"] is False


@pytest.mark.parametrize("seed", [3, 4, 5])
def test_same_distribution_batch_is_not_flagged(home: Home, capsys: pytest.CaptureFixture[str], seed: int) -> None:
    drift = _ingest_json(home, _rows(200, seed, 1000 * seed), f"same{seed}.csv", capsys)["drift"]
    assert drift["drifted"] is False and drift["columns"] == []
    assert 0.3 < drift["auc"] < 0.75
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM drift_rows").fetchone()[0] == 0


def test_newest_looking_rows_of_a_drifted_batch_are_mined_as_drift(home: Home,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    batch = _rows(100, 6, 30_000).drop(columns="churned")
    batch.loc[:19, "height_m"] = batch.loc[:19, "height_m"] * 100  # 20 rows in centimetres
    drift = _ingest_json(home, batch, "cm.csv", capsys)["drift"]
    assert drift["drifted"] and drift["columns"] == ["height_m"]
    capsys.readouterr()
    assert main(["--home", str(home.root), "mine", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["counts"]["drift"] >= 15
    with open_warehouse(home, read_only=True) as con:
        flagged = {r[0] for r in con.execute(
            "SELECT example_id FROM issues WHERE issue_type = 'drift' AND is_issue").fetchall()}
    changed = {f"r{30_000 + i}" for i in range(20)}
    assert len(flagged & changed) >= 15 and len(flagged - changed) <= 5


TEXT_CONFIG = """
[dataset]
name = "reviews"
modality = "text"
id_column = "id"
label_column = "label"
text_column = "review"
classes = ["pos", "neg"]
"""

GADGETS = ["battery", "screen", "charger", "case", "headset", "cable", "speaker", "keyboard"]
MEALS = ["pasta", "soup", "waiter", "dessert", "pizza", "salad", "menu", "table"]
GOOD, BAD = ["great", "works well", "love the", "excellent"], ["broken", "awful", "hate the", "poor"]


def _reviews(n: int, seed: int, start: int, nouns: list[str], labeled: bool = True) -> pd.DataFrame:
    """``n`` short reviews about ``nouns``; the label is the sentiment of the phrase drawn."""
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.5
    words = [f"{rng.choice(GOOD if g else BAD)} {rng.choice(nouns)} and the {rng.choice(nouns)}" for g in good]
    frame = pd.DataFrame({"id": [f"t{start + i}" for i in range(n)], "review": words})
    if labeled:
        frame["label"] = np.where(good, "pos", "neg")
    return frame


def test_text_batch_on_another_subject_is_flagged_by_the_domain_classifier(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = homes.make_home(tmp_path, TEXT_CONFIG)
    assert _ingest_json(home, _reviews(400, 0, 0, GADGETS), "gadgets.csv", capsys)["drift"] is None
    same = _ingest_json(home, _reviews(150, 1, 1000, GADGETS, labeled=False), "more.csv", capsys)["drift"]
    assert same["drifted"] is False and same["per_column"] == [] and same["auc"] < 0.75
    meals = _ingest_json(home, _reviews(150, 2, 2000, MEALS, labeled=False), "meals.csv", capsys)["drift"]
    assert meals["drifted"] is True and meals["columns"] == [] and meals["auc"] > 0.9


def test_champion_predictions_are_compared_once_a_champion_is_deployed(fitted_digits, tmp_path: Path) -> None:
    """A batch of only zeros (unlabeled) shifts the champion's predicted classes; a random batch does not."""
    from data_engine.steps import ingest

    home = fitted_digits.copy(tmp_path / "digits")
    X, y = homes.digits()
    unused = np.setdiff1d(np.arange(len(y)), np.concatenate(list(fitted_digits.info["parts"].values())))
    # A random draw: the digits file is in collection order (its first rows differ measurably from the rest).
    zeros, mixed = unused[y[unused] == "0"][:100], np.random.default_rng(0).choice(unused, 150, replace=False)
    with open_warehouse(home) as con:
        drifts = {}
        for name, rows in (("mixed", mixed), ("zeros", zeros)):
            frame = pd.DataFrame(X[rows], columns=homes.PIXELS)
            frame.insert(0, "id", [f"new-{name}-{i}" for i in rows])
            frame.to_csv(home.landing / f"{name}.csv", index=False)
            drifts[name] = ingest(con, home, home.landing / f"{name}.csv").drift
    assert drifts["mixed"]["predictions_compared"] and not drifts["mixed"]["drifted"], [(c["column"], c["p_value"], c["p_adjusted"], c["test"]) for c in drifts["mixed"]["per_column"] if c["drifted"]]
    zero = drifts["zeros"]
    assert zero["drifted"] and "champion prediction" in zero["columns"]
    assert next(c for c in zero["per_column"] if c["column"] == "champion prediction")["kind"] == "categorical"


def test_labeled_rows_of_a_drifted_batch_are_not_queued_as_drift() -> None:
    # The rows worth a label are the unlabeled ones; a labeled row of a drifted batch already has
    # one (before: the wine trial queued 9 labeled rows whose label the model agreed with).
    from data_engine.mine.detectors.base import MiningData
    from data_engine.mine.detectors.drift import DriftDetector

    ids = np.array([f"e{i}" for i in range(6)], dtype=object)
    labels = np.array([0, 1, 0, -1, -1, -1])
    data = MiningData(example_ids=ids, labels=labels, classes=("a", "b"), probs=np.full((6, 2), 0.5),
                      out_of_sample=np.ones(6, bool), feature_hash=np.arange(6),
                      drift_scores={f"e{i}": 0.9 for i in range(6)} | {"e5": 0.2})
    frame = DriftDetector().find_issues(data).issues
    assert sorted(frame["example_id"]) == ["e3", "e4", "e5"]
    assert sorted(frame.loc[frame["is_issue"], "example_id"]) == ["e3", "e4"]


@pytest.mark.parametrize(("task", "label", "labels_compared"), [
    # a number: its distribution is tested like a numeric column; a tag set as one yes/no column per
    # tag (whether each example carries it): a set is nearly unique per row.
    ("regression", lambda f: (f["weight"] * 1.5).round(1), True),
    ("multilabel", lambda f: np.where(f["weight"] > 72, '["heavy", "x"]', '["x"]'), True),
])
def test_drift_works_for_numbers_and_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          task: str, label, labels_compared: bool) -> None:
    config = CONFIG.replace('classes = ["yes", "no"]', f'task = "{task}"')
    home = homes.make_home(tmp_path, config)
    first = _rows(600, 0, 0)
    first["churned"] = label(first)
    assert _ingest_json(home, first, "train.csv", capsys)["drift"] is None
    same = _rows(200, 3, 3_000)
    same["churned"] = label(same)
    assert _ingest_json(home, same, "same.csv", capsys)["drift"]["drifted"] is False
    grams = _rows(200, 1, 10_000)
    grams["churned"] = label(grams)
    grams["height_m"] = grams["height_m"] * 100  # metres -> centimetres
    drift = _ingest_json(home, grams, "cm.csv", capsys)["drift"]
    assert drift["drifted"] is True and drift["columns"] == ["height_m"]
    assert drift["labels_compared"] is labels_compared


def test_a_few_short_texts_sharing_no_character_ngram_are_ingested(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Five one-word texts share no character n-gram in two texts: TF-IDF's min_df=2 refused them
    with a traceback (after the batch was stored). Below the domain classifier's rows no embedding is made."""
    home = homes.make_home(tmp_path, '[dataset]\nname = "s"\nmodality = "text"\nid_column = "id"\n'
                                     'label_column = "label"\ntext_column = "text"\n')
    first = _ingest_json(home, pd.DataFrame({"id": ["1", "2", "3"], "text": ["great", "awful", "lovely"],
                                             "label": ["pos", "neg", "pos"]}), "one.csv", capsys)
    second = _ingest_json(home, pd.DataFrame({"id": ["4", "5"], "text": ["nice", "horrid"],
                                              "label": ["pos", "neg"]}), "two.csv", capsys)
    assert first["drift"] is None and second["rows_ok"] == 2
    assert second["drift"]["auc"] is None and second["drift"]["drifted"] is False


def test_a_tiny_unlabeled_text_batch_says_its_drift_was_not_checked(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Three unlabeled texts and no champion: only the domain classifier could read them, and it needs
    10 rows a side. The batch is not compared, and ``ingest --json``, the ingest line, ``status`` and the
    Dagster check say so (before: ``"drift": null``, as for a gold batch)."""
    from assets.ingest import drift_check_result

    home = homes.make_home(tmp_path, TEXT_CONFIG)
    assert _ingest_json(home, _reviews(40, 0, 0, GADGETS), "gadgets.csv", capsys)["drift"] is None
    reason = ("3 rows in the batch; the domain classifier on the embedding of review needs at least 10 a side "
              "(no label or champion prediction to compare)")
    drift = _ingest_json(home, _reviews(3, 1, 1000, GADGETS, labeled=False), "three.csv", capsys)["drift"]
    assert drift == {"drifted": False, "skipped": reason, "columns": [], "auc": None, "n_reference": 40,
                     "n_batch": 3, "per_column": [], "new_tags": [], "labels_compared": False,
                     "predictions_compared": False}
    path = home.landing / "four.csv"
    _reviews(4, 2, 2000, GADGETS, labeled=False).to_csv(path, index=False)
    capsys.readouterr()
    assert main(["--home", str(home.root), "ingest", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  drift not checked: {reason.replace('3 rows', '4 rows')}\n" in out
    assert main(["--home", str(home.root), "status"]) == 0
    assert out.count("drift not checked") == 1 and capsys.readouterr().out.count("drift not checked: ") == 2
    check = drift_check_result(drift)
    assert check.passed and check.description == f"drift not checked: {reason}"
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*), bool_or(drifted) FROM batch_drift").fetchone() == (2, False)


def _digit_batch(folder: Path, rows: np.ndarray, name: str, *, inverted: bool = False) -> Path:
    """Digits ``rows`` as PNG files under ``folder/name/`` and their manifest ``folder/name.csv``;
    ``inverted``: white ink on black (another camera), the labels unchanged."""
    from PIL import ImageOps
    from sklearn.datasets import load_digits

    from data_engine.demo.image_files import digit_image

    digits = load_digits()
    (folder / name).mkdir(parents=True)
    manifest = []
    for i in rows:
        image = digit_image(digits.data[i])
        (ImageOps.invert(image) if inverted else image).save(folder / name / f"{name}{i}.png")
        manifest.append({"id": f"{name}{i}", "image": f"{name}/{name}{i}.png", "label": str(digits.target[i])})
    pd.DataFrame(manifest).to_csv(folder / f"{name}.csv", index=False)
    return folder / f"{name}.csv"


def test_an_image_file_batch_is_compared_on_the_image_embedding(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """An image-file data set has no column a per-column test reads: the domain classifier reads the
    images' embedding. Digits from the same source are not drifted; the same digits inverted are."""
    from data_engine.demo.image_files import IMAGE_FILES_CONFIG

    home = homes.make_home(tmp_path, IMAGE_FILES_CONFIG)

    def ingest(path: Path) -> dict:
        capsys.readouterr()
        assert main(["--home", str(home.root), "ingest", "--json", str(path)]) == 0
        [result] = json.loads(capsys.readouterr().out)
        return result

    # Shuffled: the digits are stored in blocks by writer, and another writer's hand is a real change.
    order = np.random.default_rng(0).permutation(1797)
    assert ingest(_digit_batch(home.landing, order[:300], "first"))["drift"] is None
    same = ingest(_digit_batch(home.landing, order[300:420], "same"))["drift"]
    assert same["drifted"] is False and same["auc"] < 0.75 and same["labels_compared"] is True
    inverted = ingest(_digit_batch(home.landing, order[420:540], "inverted", inverted=True))["drift"]
    assert inverted["drifted"] is True and inverted["auc"] >= 0.9 and inverted["columns"] == []


def test_a_tag_carried_far_more_often_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Tag sets are compared one tag at a time (whether each example carries it): a batch whose inputs
    are as before but where every example carries ``heavy`` names that tag's column, and only it."""
    home = homes.make_home(tmp_path, CONFIG.replace('classes = ["yes", "no"]', 'task = "multilabel"'))
    first = _rows(600, 0, 0)
    first["churned"] = np.where(first["weight"] > 72, '["heavy", "x"]', '["x"]')
    assert _ingest_json(home, first, "train.csv", capsys)["drift"] is None
    batch = _rows(200, 3, 3_000)
    batch["churned"] = '["heavy", "x"]'
    drift = _ingest_json(home, batch, "all-heavy.csv", capsys)["drift"]
    assert drift["drifted"] is True and drift["columns"] == ["churned: heavy"] and drift["labels_compared"] is True
    assert {c["column"] for c in drift["per_column"]} >= {"churned: heavy", "churned: x"}


def test_a_tag_training_never_carried_is_named_and_its_rate_tested(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A tag of ``[dataset] classes`` no training example carries is named in ``new_tags`` when a batch
    carries it; whether that is drift is Fisher's exact test of the two rates (0 of 600 against k of 200),
    not "a new category" at p = 0: one such row is named and is no drift, twenty are drift."""
    from math import comb

    first = _rows(600, 0, 0)
    first["churned"] = np.where(first["weight"] > 72, '["heavy", "x"]', '["x"]')
    drifts = {}
    for k in (1, 20):  # a home each: the first batch's rare row would be training in force for the second
        home = homes.make_home(tmp_path / str(k), CONFIG.replace(
            'classes = ["yes", "no"]', 'task = "multilabel"\nclasses = ["heavy", "x", "rare"]'))
        assert _ingest_json(home, first, "train.csv", capsys)["drift"] is None
        batch = _rows(200, 3, 3_000 * k)
        batch["churned"] = np.where(batch["weight"] > 72, '["heavy", "x"]', '["x"]')
        batch.loc[: k - 1, "churned"] = '["rare", "x"]'
        drifts[k] = _ingest_json(home, batch, f"rare{k}.csv", capsys)["drift"]
    for k, drift in drifts.items():
        rare = next(c for c in drift["per_column"] if c["column"] == "churned: rare")
        assert drift["new_tags"] == ["rare"] and rare["new_categories"] == ["rare"]
        assert (rare["kind"], rare["test"]) == ("rate", "fisher") and rare["distance"] == pytest.approx(k / 200)
        # All k carriers of 800 rows fell in the batch of 200: the hypergeometric chance, the only table as
        # unlikely (none in the batch is likelier).
        assert rare["p_value"] == pytest.approx(comb(200, k) / comb(800, k), rel=1e-9)
    assert drifts[1]["drifted"] is False and drifts[1]["per_column"][-1]["p_value"] == pytest.approx(0.25)
    assert drifts[20]["drifted"] is True and drifts[20]["columns"] == ["churned: rare"]
    again = _rows(200, 5, 50_000)
    again["churned"] = np.where(again["weight"] > 72, '["heavy", "x"]', '["x"]')
    assert _ingest_json(home, again, "again.csv", capsys)["drift"]["new_tags"] == []  # rare is in training now
    from data_engine.ingest.summary import drift_line

    assert drift_line(drifts[1]) == "no drift from the training data (domain classifier AUC " \
        f"{drifts[1]['auc']:.2f}); new tag: rare"
    assert drift_line(drifts[20]).startswith("drifted: churned: rare (new: rare); ")


def test_span_and_box_sets_are_compared_as_the_types_they_carry() -> None:
    from data_engine.ship.drift_check import _carried
    from data_engine.tasks import TASKS

    spans = pd.Series(['[{"start": 0, "end": 4, "label": "PER"}]', None, "[]"], index=[5, 6, 7])
    carried = _carried(TASKS["ner"](), spans, ["LOC", "PER"], ["spans: LOC", "spans: PER"])
    assert carried.index.tolist() == [5, 6, 7]
    assert carried.fillna(-1).to_dict("list") == {"spans: LOC": [0.0, -1, 0.0], "spans: PER": [1.0, -1, 0.0]}
    boxes = pd.Series(['[{"label": "disc", "x": 1, "y": 2, "w": 3, "h": 4}, {"label": "disc", "x": 9, "y": 9, '
                       '"w": 3, "h": 4}]'])
    assert _carried(TASKS["detection"](), boxes, ["disc", "square"], ["b: disc", "b: square"]).iloc[0].tolist() == [
        1.0, 0.0]


def test_each_set_task_summarises_its_predictions_for_drift() -> None:
    """Tags as 0/1 per tag (the predicted rate); spans and boxes as counts per type or class, and in all."""
    from data_engine.tasks import TASKS
    from data_engine.tasks import tokens as tk
    from data_engine.tasks.box_issues import ScoredBox
    from data_engine.tasks.box_pack import pack
    from data_engine.tasks.boxes import Box

    tags = TASKS["multilabel"]().prediction_summary(np.array([[0.9, 0.2], [0.4, 0.7], [0.6, 0.5]]), ["a", "b"])
    assert {k: v.tolist() for k, v in tags.items()} == {"a": [1.0, 0.0, 1.0], "b": [0.0, 1.0, 1.0]}

    def tagged(tags: list[int]) -> np.ndarray:  # one-hot IO tags over O, LOC, PER
        return np.eye(3)[tags]

    texts = ["Ann met Bob in Rome", "nothing here"]
    spans = tk.pack([tk.offsets(t) for t in texts], [tagged([2, 0, 2, 0, 1]), tagged([0, 0])], 2)
    summary = TASKS["ner"]().prediction_summary(spans, ["LOC", "PER"])
    assert {k: v.tolist() for k, v in summary.items()} == {"LOC": [1.0, 0.0], "PER": [2.0, 0.0],
                                                           "all entities": [3.0, 0.0]}
    boxes = pack([[ScoredBox(Box("disc", 1, 1, 4, 4), 0.9), ScoredBox(Box("disc", 9, 9, 4, 4), 0.8),
                   ScoredBox(Box("square", 20, 1, 4, 4), 0.3)],  # scored below 0.5: not predicted
                  [ScoredBox(Box("square", 2, 2, 5, 5), 0.7)]], ["disc", "square"])
    summary = TASKS["detection"]().prediction_summary(boxes, ["disc", "square"])
    assert {k: v.tolist() for k, v in summary.items()} == {"disc": [2.0, 0.0], "square": [0.0, 1.0],
                                                           "all boxes": [2.0, 1.0]}
    # Counts are numeric drift columns: one box more of one class per image is named, with the total.
    from data_engine.ingest.drift import batch_drift

    rng = np.random.default_rng(0)
    before = pd.DataFrame({"champion prediction: disc": rng.poisson(1.0, 400).astype(float),
                           "champion prediction: square": rng.poisson(2.0, 400).astype(float)})
    same = pd.DataFrame({"champion prediction: disc": rng.poisson(1.0, 150).astype(float),
                         "champion prediction: square": rng.poisson(2.0, 150).astype(float)})
    more = same.assign(**{"champion prediction: disc": same["champion prediction: disc"] + 1})
    for frame in (before, same, more):
        frame["champion prediction: all boxes"] = frame.sum(axis=1)
    assert batch_drift(before, same, with_auc=False).columns == []
    assert batch_drift(before, more, with_auc=False).columns == ["champion prediction: disc",
                                                                 "champion prediction: all boxes"]


def _tagged_rows(n: int, seed: int, start: int, *, same_person: bool = False) -> pd.DataFrame:
    """``n`` rows tagged ``heavy`` when weight is more than one standard deviation further above its mean
    than height (about 24 % of rows) and ``tall`` when height is half a deviation above its own (31 %).
    ``same_person``: height and weight drawn as one standard score, so each column is distributed as
    before but nobody is ``heavy``."""
    rng = np.random.default_rng(seed)
    frame = _rows(n, seed, start)
    z_weight = rng.normal(0, 1, n)
    z_height = z_weight if same_person else rng.normal(0, 1, n)
    frame["weight"], frame["height_m"] = (70 + 10 * z_weight).round(2), (1.7 + 0.1 * z_height).round(4)
    frame["churned"] = [json.dumps([t for t, on in (("heavy", zw - zh > 1), ("tall", zh > 0.5)) if on])
                        for zw, zh in zip(z_weight, z_height)]
    return frame


def test_a_batch_whose_predicted_tag_rate_changes_names_the_tag(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """With a champion deployed, its tag predictions are compared tag by tag (0/1: the predicted rate).
    A batch whose columns are each distributed as before, but whose height and weight move together,
    gets no ``heavy`` prediction (24 % of training rows did): that tag's column is named, and only it."""
    from data_engine.ship import deploy
    from data_engine.ship.training import train_candidate

    home = homes.make_home(tmp_path, CONFIG.replace('classes = ["yes", "no"]', 'task = "multilabel"')
                           + '\n[retrain]\nmodel = "linear"\n')
    assert _ingest_json(home, _tagged_rows(600, 0, 0), "train.csv", capsys)["drift"] is None
    with open_warehouse(home) as con:
        deploy.promote(con, home, train_candidate(con, home).record.version, reason="first")
    same = _ingest_json(home, _tagged_rows(200, 3, 3_000).drop(columns="churned"), "same.csv", capsys)["drift"]
    assert same["predictions_compared"] is True and same["drifted"] is False and same["columns"] == []
    assert {c["column"] for c in same["per_column"] if c["column"].startswith("champion")} == {
        "champion prediction: heavy", "champion prediction: tall"}
    moved = _ingest_json(home, _tagged_rows(200, 4, 4_000, same_person=True).drop(columns="churned"),
                         "together.csv", capsys)["drift"]
    assert moved["drifted"] is True and moved["columns"] == ["champion prediction: heavy"]
    heavy = next(c for c in moved["per_column"] if c["column"] == "champion prediction: heavy")
    # The champion predicted heavy for 151 of the 600 training rows and for none of the batch's.
    assert heavy["kind"] == "numeric" and heavy["distance"] == pytest.approx(151 / 600) and heavy["p_adjusted"] < 1e-6
