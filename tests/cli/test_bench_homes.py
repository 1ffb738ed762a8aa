"""Every ``bench detect`` writes its engine home's config in one place, :func:`make_home`: the
classification sets, the regression set (diabetes) and the multi-label set (digit-tags) alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from data_engine.bench import detect_multilabel, detect_regression, homes
from data_engine.bench.datasets import BenchDataset
from data_engine.store.home import Home

FRAME = pd.DataFrame({"x": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"]})
SCHEMA = {"x": "numeric", "colour": "categorical"}


def test_make_home_writes_the_task_its_classes_the_label_column_and_the_seed(tmp_path: Path) -> None:
    data = BenchDataset("t", "tabular", FRAME, np.array(["b", "a", "b"], dtype=object), SCHEMA)
    plain = homes.make_home(tmp_path / "plain", data, model="linear", n_jobs=1, budget=2).config
    assert (plain.dataset.task, plain.dataset.classes, plain.dataset.label_column) == ("classification", ("a", "b"),
                                                                                        "label")
    assert plain.dataset.feature_columns == ("x", "colour") and plain.dataset.column_types == {"colour": "categorical"}
    assert (plain.mining.model, plain.mining.n_jobs, plain.mining.seed, plain.review.budget) == ("linear", 1, 0, 2)
    numbers = BenchDataset("n", "tabular", FRAME, np.array([1.5, 2.0, 7.0]), SCHEMA)
    cfg = homes.make_home(tmp_path / "numbers", numbers, model="auto", n_jobs=2, budget=3, task="regression",
                           label_column="target", seed=4).config
    assert (cfg.dataset.task, cfg.dataset.classes, cfg.dataset.label_column, cfg.mining.seed) == (
        "regression", None, "target", 4)
    tags = BenchDataset("g", "tabular", FRAME, np.array(["p|q", "[]", "q"], dtype=object), SCHEMA)
    cfg = homes.make_home(tmp_path / "tags", tags, model="auto", n_jobs=2, budget=3, task="multilabel",
                           classes=["p", "q"], label_column="tags", seed=1).config
    assert (cfg.dataset.task, cfg.dataset.classes, cfg.dataset.label_column, cfg.mining.seed) == (
        "multilabel", ("p", "q"), "tags", 1)


@pytest.mark.parametrize("bench", ["numbers", "tags"])
def test_the_regression_and_multilabel_benches_build_their_home_with_make_home(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bench: str) -> None:
    """They wrote their config.toml by hand; the config they get from make_home is the one they wrote
    (task, label column, features, classes, seed, budget), and the landed frame carries the labels."""
    calls: list[dict[str, Any]] = []
    real = homes.make_home
    monkeypatch.setattr(homes, "make_home", lambda *a, **kw: calls.append(kw) or real(*a, **kw))
    landed = {}

    def mine(home, frame, name, truth):  # stands in for ingest + mining: the home and the file are what is checked
        landed.update(config=home.config, frame=frame, name=name)
        return {}

    module = detect_regression if bench == "numbers" else detect_multilabel
    monkeypatch.setattr(module, "mine_landed_frame", mine)
    if bench == "numbers":
        module.run_regression_detect_benchmark(noise=0.1, seed=3, model="linear", baseline=False, n_jobs=1,
                                               keep=tmp_path / "home")
        X, y = detect_regression.load_diabetes_frame()
        expected = ("diabetes", "regression", "target", None, len(y))
        noisy, _ = detect_regression.inject_value_errors(y, 0.1, seed=3)
        labels = noisy.tolist()
    else:
        module.run_multilabel_detect_benchmark(noise=0.1, seed=3, model="linear", baseline=False, n_jobs=1,
                                               keep=tmp_path / "home")
        X, Y, tags = detect_multilabel.load_digit_tags()
        expected = ("digit-tags", "multilabel", "tags", tuple(tags), len(Y))
        labels = detect_multilabel.tag_cells(detect_multilabel.inject_tag_errors(Y, 0.1, seed=3)[0], tags)
    assert len(calls) == 1 and calls[0]["task"] == expected[1]
    cfg = landed["config"]
    assert (cfg.dataset.name, cfg.dataset.task, cfg.dataset.label_column, cfg.dataset.classes,
            cfg.review.budget) == expected
    assert cfg.dataset.feature_columns == tuple(X.columns) and cfg.dataset.modality == "tabular"
    assert (cfg.mining.model, cfg.mining.n_jobs, cfg.mining.seed, cfg.mining.embedding) == ("linear", 1, 3, "auto")
    assert Home(tmp_path / "home").config == cfg  # the kept home holds that config
    assert landed["frame"][expected[2]].tolist() == labels and landed["frame"].columns[0] == "id"
