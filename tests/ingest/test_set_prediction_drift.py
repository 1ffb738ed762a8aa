"""Drift of a trained champion's span and box predictions per landed batch (``ship/drift_check``): a
batch whose texts hold no entity, or whose images hold no object, names the champion-prediction
columns of each type or class and of all; a batch drawn like the training data is not flagged.
Small sets: the built-in tagger and detector train in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_engine.ship import deploy
from data_engine.ship.training import train_candidate
from data_engine.steps import ingest, ingest_step
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home


def _promote_first_candidate(home: Home) -> None:
    with open_warehouse(home) as con:
        deploy.promote(con, home, train_candidate(con, home).record.version, reason="first")


def _drift(home: Home, path: Path) -> dict:
    with open_warehouse(home) as con:
        return ingest(con, home, path).drift


def _by_column(drift: dict) -> dict[str, dict]:
    return {c["column"]: c for c in drift["per_column"]}


def test_texts_without_entities_name_the_champions_entity_columns(tmp_path: Path) -> None:
    from data_engine.demo.entities import make_texts

    home = make_home(tmp_path, {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id",
                                            "label_column": "spans", "text_column": "text", "feature_columns": [],
                                            "classes": ["LOC", "ORG", "PER"]},
                                "mining": {"n_jobs": 1, "folds": 3}, "gate": {"metric": "f1"}})

    def write(name: str, texts: list[tuple[str, tuple]], labeled: bool = False) -> Path:
        path = home.landing / f"{name}.jsonl"
        path.write_text("".join(json.dumps({"id": f"{name}{i}", "text": text}
                                           | ({"spans": [s._asdict() for s in spans]} if labeled else {})) + "\n"
                                for i, (text, spans) in enumerate(texts)), encoding="utf-8")
        return path

    train = make_texts(120, seed=1)
    ingest_step(home, [write("train", train, labeled=True)])
    _promote_first_candidate(home)
    rng = np.random.default_rng(0)
    plain = [(f"the {rng.choice(['market', 'weather', 'river', 'train'])} was "
              f"{rng.choice(['quiet', 'busy', 'slow', 'late'])} on {rng.choice(['monday', 'friday'])}.", ())
             for _ in range(40)]
    columns = [f"champion prediction: {t}" for t in ("LOC", "ORG", "PER", "all entities")]
    same = _drift(home, write("same", make_texts(40, seed=2)))
    assert same["predictions_compared"] is True and same["drifted"] is False and same["columns"] == []
    assert [c for c in _by_column(same) if c.startswith("champion")] == columns
    empty = _drift(home, write("plain", plain))
    assert empty["drifted"] is True and empty["columns"] == columns
    per = _by_column(empty)
    # The batch's counts are all 0, so each distance is the champion's mean count per training text:
    # the true one (it tags its own training texts right), 273 entities in 120 texts.
    assert sum(len(spans) for _, spans in train) == 273
    assert per["champion prediction: all entities"]["distance"] == pytest.approx(273 / 120)
    assert per["champion prediction: all entities"]["kind"] == "numeric"
    assert all(per[c]["p_adjusted"] < 1e-6 for c in columns)


def test_images_without_objects_name_the_champions_box_columns(tmp_path: Path) -> None:
    from data_engine.demo.drawn_boxes import CLASSES, SIDE, Scene, make_scenes, write_scenes

    home = make_home(tmp_path, {"dataset": {"name": "boxes", "modality": "image", "task": "detection",
                                            "id_column": "id", "label_column": "boxes", "image_column": "image",
                                            "feature_columns": [], "classes": list(CLASSES)},
                                "mining": {"n_jobs": 1, "folds": 3}, "gate": {"metric": "map50"}})

    def unlabeled(path: Path) -> Path:
        path.write_text("".join(json.dumps({k: v for k, v in json.loads(line).items() if k != "boxes"}) + "\n"
                                for line in path.read_text().splitlines()), encoding="utf-8")
        return path

    train = make_scenes(60, seed=1)
    ingest_step(home, [write_scenes(home.landing, train, prefix="s", name="train")])
    _promote_first_candidate(home)
    columns = [f"champion prediction: {c}" for c in (*CLASSES, "all boxes")]
    same = _drift(home, unlabeled(write_scenes(home.landing / "same", make_scenes(30, seed=2), prefix="u",
                                               name="same")))
    assert same["predictions_compared"] is True and same["drifted"] is False and same["columns"] == []
    assert [c for c in _by_column(same) if c.startswith("champion")] == columns
    blank = [Scene(np.full((SIDE, SIDE, 3), 255, np.uint8), [], []) for _ in range(30)]
    empty = _drift(home, unlabeled(write_scenes(home.landing / "empty", blank, prefix="e", name="empty")))
    assert empty["drifted"] is True and empty["columns"] == columns
    per = _by_column(empty)
    # All 0 in the batch: each distance is the champion's mean count per training image, the true one.
    assert sum(len(s.truth) for s in train) == 179
    assert per["champion prediction: all boxes"]["distance"] == pytest.approx(179 / 60)
    assert all(per[c]["p_adjusted"] < 1e-6 for c in columns)
