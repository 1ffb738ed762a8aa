"""The whole mining step for every modality and round: (tabular, text, image columns, image files)
x (first run, a run after reviewers relabelled and discarded examples), every detector on,
propagation on, and each selection strategy once across the matrix.

Issue 27: image files crashed at the second run, because the look-alike detector read surface
features from pixel columns an image-file data set does not have; it now reads the modality's own
(stored) embedding for such columns. The data is small and generated so the matrix runs in seconds.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.mine.detectors.lookalike import MIN_DISCARDED
from data_engine.mine.run import run_mining
from data_engine.mine.detectors import DETECTORS
from data_engine.mine.selection import STRATEGIES
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home
from tests.image_support import image_files_home
from tests.loop_support import make_home as make_digits_home
from tests.loop_support import review, seed_digits

MODALITIES = ("tabular", "text", "image columns", "image files")
ROUNDS = ("first", "after review")
CELLS = [(m, r) for m in MODALITIES for r in ROUNDS]
# One strategy per cell, in turn: the eight cells run the eight registered strategies.
STRATEGY = dict(zip(CELLS, itertools.cycle(sorted(STRATEGIES))))
# Above the flags of every cell: fixes and the strategy's new examples both get reviews.
BUDGET = 300
# Every registered detector (class_imbalance always runs).
MINING = {"model": "linear", "folds": 3, "n_jobs": 1, "detectors": sorted(set(DETECTORS) - {"class_imbalance"})}
REVIEW = {"budget": BUDGET, "propagate": "apply", "propagate_min_verdicts": 5}
# The embedding "auto" resolves to per modality, as the run must report it.
EMBEDDING = {"tabular": "tfidf", "text": "e5-small", "image columns": "tfidf", "image files": "image"}
# What the look-alike detector learns from: surface features where they read every column, the
# modality's own embedding where they cannot (image files).
LOOKALIKE_FEATURES = {"tabular": "surface", "text": "surface", "image columns": "surface",
                      "image files": "image embedding"}


def _sections(strategy: str) -> str:
    def toml(values: dict[str, object]) -> str:
        return "\n".join(f"{k} = {v!r}".replace("'", '"') for k, v in values.items())
    return f"\n[mining]\n{toml(MINING)}\n\n[review]\n{toml(REVIEW | {'strategy': strategy})}\n"


def _csv_home(root: Path, dataset: str, frame: pd.DataFrame, strategy: str) -> Home:
    home = make_home(root, dataset + _sections(strategy))
    path = home.landing / "data.csv"
    frame.to_csv(path, index=False)
    with open_warehouse(home) as con:
        assert ingest_file(con, home.config.dataset, path).status == "ingested"
    return home


def _tabular_home(root: Path, strategy: str) -> Home:
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=240, n_features=5, n_informative=3, random_state=0)
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)]).round(4)
    frame["color"] = np.array(["red", "green", "blue"], dtype=object)[np.arange(len(y)) % 3]
    frame["label"] = np.where(y == 1, "yes", "no").astype(object)
    frame.loc[200:, "label"] = ""  # the last 40 rows come unlabeled
    frame.insert(0, "id", [f"t{i:04d}" for i in range(len(frame))])
    dataset = ('[dataset]\nname = "table"\nmodality = "tabular"\nid_column = "id"\nlabel_column = "label"\n'
               'feature_columns = ["x0", "x1", "x2", "x3", "x4", "color"]\nclasses = ["no", "yes"]\n')
    return _csv_home(root, dataset, frame, strategy)


def _text_home(root: Path, strategy: str) -> Home:
    rng = np.random.default_rng(0)
    pos = "great good lovely excellent tasty friendly fast superb nice recommend".split()
    neg = "bad awful slow rude broken terrible cold bland poor avoid".split()
    fill = "the food service phone screen movie was is really quite and very this it".split()
    y = rng.integers(0, 2, 200)
    texts = []
    for label in y:
        words = list(rng.choice(fill, 5)) + [rng.choice(pos if label else neg)]
        rng.shuffle(words)
        texts.append(" ".join(words).capitalize() + ".")
    frame = pd.DataFrame({"id": [f"s{i:04d}" for i in range(len(y))], "sentence": texts,
                          "label": np.where(y == 1, "pos", "neg").astype(object)})
    frame.loc[170:, "label"] = ""
    dataset = ('[dataset]\nname = "reviews"\nmodality = "text"\nid_column = "id"\nlabel_column = "label"\n'
               'text_column = "sentence"\nclasses = ["neg", "pos"]\n')
    return _csv_home(root, dataset, frame, strategy)


def _image_columns_home(root: Path, strategy: str) -> Home:
    home = make_digits_home(root, sections={"mining": MINING, "review": REVIEW | {"strategy": strategy}})
    seed_digits(home, n_train=240, n_gold=0, n_unlabeled=40, noise=0.1)
    return home


def _image_files_home(root: Path, strategy: str, *, n: int = 200, embedding: str = "auto") -> Home:
    config = _sections(strategy).replace("[mining]\n", f'[mining]\nembedding = "{embedding}"\n')
    home, _, _ = image_files_home(root, n=n, near_copies=3, noise_every=10, extra_config=config)
    with open_warehouse(home) as con:  # the last 30 files landed without a label: a pool to select from
        con.execute("UPDATE examples SET label = NULL, label_event_id = NULL WHERE example_id >= ?", [f"d{n - 30:04d}"])
    return home


BUILDERS = {"tabular": _tabular_home, "text": _text_home, "image columns": _image_columns_home,
            "image files": _image_files_home}


def _relabel_and_discard(con) -> tuple[list[str], list[str]]:
    """A reviewer discards MIN_DISCARDED + 1 labeled examples and relabels as many others."""
    rows = con.execute("SELECT example_id, label FROM current_labels WHERE label IS NOT NULL AND NOT is_discarded "
                       "ORDER BY example_id").fetchall()
    classes = sorted({label for _, label in rows})
    k = MIN_DISCARDED + 1
    discarded = [eid for eid, _ in rows[:k]]
    relabelled = {eid: classes[(classes.index(label) + 1) % len(classes)] for eid, label in rows[k:2 * k]}
    review(con, {eid: None for eid in discarded} | relabelled)
    return discarded, list(relabelled)


@pytest.mark.parametrize(("modality", "round_"), CELLS, ids=[f"{m.replace(' ', '-')}-{r.replace(' ', '-')}" for m, r in CELLS])
def test_the_whole_mining_step_runs_for_every_modality_and_round(tmp_path: Path, modality: str, round_: str) -> None:
    strategy = STRATEGY[(modality, round_)]
    home = BUILDERS[modality](tmp_path, strategy)
    assert set(home.config.mining.detectors) | {"class_imbalance"} == set(DETECTORS)
    assert home.config.review.strategy == strategy
    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        discarded: list[str] = []
        if round_ == "after review":
            discarded, relabelled = _relabel_and_discard(con)
            summary = run_mining(con, home.config, home=home)
        queue = con.execute("SELECT rank, example_id, issue_types, priority, selection FROM review_queue WHERE run_id = ? "
                            "ORDER BY rank", [summary.run_id]).fetchdf()
        n_examples = con.execute("SELECT count(*) FROM current_examples").fetchone()[0]
        stored = con.execute("SELECT summary->>'embedding' FROM mining_runs WHERE run_id = ?",
                             [summary.run_id]).fetchone()[0]
    assert summary.embedding == stored == EMBEDDING[modality]
    assert set(summary.detector_summaries) >= set(DETECTORS)
    # A queue of the expected shape: 1..n ranks, each example once, within the budget, ranked by priority.
    assert 0 < len(queue) == summary.queue_size <= BUDGET
    assert queue["rank"].tolist() == list(range(1, len(queue) + 1))
    assert queue["example_id"].is_unique and len(queue) < n_examples
    assert (queue["issue_types"].map(len) > 0).all()
    # How each row was chosen: a flagged issue (fix, a second opinion, a relabel) or a new example
    # the strategy picked (its random explore share, or the cold start before any model), or one
    # asked for inside a discovered weak slice.
    selected = set(queue["selection"]) - {"fix", "second_opinion", "relabel"}
    assert selected and selected <= {strategy, "cold_start", "explore", "weak_slice"}, queue["selection"].value_counts()
    grow = queue["selection"].isin(selected)
    assert (queue["selection"] == "weak_slice").sum() <= np.ceil(0.2 * grow.sum())
    lookalike = summary.detector_summaries["lookalike"]
    if round_ == "first":
        assert lookalike["status"] == "waiting for verdicts"
        return
    assert not set(discarded) & set(queue["example_id"]), "a discarded example went back to review"
    assert lookalike["status"] == "trained", lookalike
    assert lookalike["verdicts"] == 2 * (MIN_DISCARDED + 1) and lookalike["discarded"] == MIN_DISCARDED + 1
    assert lookalike["features"] == LOOKALIKE_FEATURES[modality]
    assert summary.propagation["policy"] == "apply"


def test_image_files_with_tfidf_named_still_give_the_lookalike_the_image_embedding(tmp_path: Path) -> None:
    # The kind, not the case: whatever [mining] embedding says, columns surface features cannot
    # read are judged on the embedder that reads them (here the run's own embedding is tfidf, fitted
    # per run and never stored, so the look-alike detector takes the stored image vectors).
    # Selection strategies measure distances in the model's feature space, which reads the files too.
    home = _image_files_home(tmp_path, "diversity", n=120, embedding="tfidf")
    with open_warehouse(home) as con:
        _relabel_and_discard(con)
        summary = run_mining(con, home.config, home=home)
        selected = con.execute("SELECT count(*) FROM review_queue WHERE run_id = ? AND selection IN ('diversity', "
                               "'explore')", [summary.run_id]).fetchone()[0]
    assert summary.embedding == "tfidf" and selected > 0
    assert summary.detector_summaries["lookalike"]["features"] == "image embedding"
    assert summary.detector_summaries["lookalike"]["status"] == "trained"
