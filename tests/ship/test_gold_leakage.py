"""Issue 24, gold leakage: gold examples with an exact or near copy in the training data are left out of
what the gate scores, and the verdict says how many (``gold_leaked``)."""

from __future__ import annotations

import json

import numpy as np

from data_engine.cli import main
from data_engine.ship import gate
from data_engine.ship.leakage import leaked_gold
from data_engine.ship.training import train_candidate
from data_engine.store.warehouse import open_warehouse
from tests.homes import PIXELS, digits_split
from tests.loop_support import insert_examples, make_home


def _gate(tmp_path, planted: np.ndarray | None):
    """Digits: 600 training and 300 gold rows; ``planted`` gold rows copied into training (the first four
    exactly, the rest with one pixel moved by 0.01, a near copy). Returns the split and the verdict."""
    home = make_home(tmp_path)
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    ids, X, y = info["ids"], info["X"], info["y"]
    train, gold = info["parts"]["train"], info["parts"]["gold"]
    with open_warehouse(home) as con:
        insert_examples(con, home, list(ids[train]), X[train], list(y[train]), batch="train-1")
        insert_examples(con, home, list(ids[gold]), X[gold], list(y[gold]), batch="gold-1", gold=True)
        if planted is not None:
            copies = X[planted].copy()
            copies[4:, 10] += 0.01
            insert_examples(con, home, [f"copy{i}" for i in range(len(planted))], copies, list(y[planted]),
                            batch="train-2")
        train_candidate(con, home)
        return home, gate.run_gate(con, home)


def test_seven_planted_copies_are_left_out_of_gold(tmp_path, capsys):
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    planted = info["parts"]["gold"][[3, 17, 42, 99, 150, 201, 280]]
    _, clean = _gate(tmp_path / "clean", None)
    assert clean.gold_leaked == 0 and clean.n_gold == 300
    home, verdict = _gate(tmp_path / "leaky", planted)
    assert verdict.gold_leaked == 7
    assert verdict.n_gold == 293  # the gate scored the rest
    assert verdict.metadata()["gold_leaked"] == 7
    assert "left out 7 gold example(s) with an exact or near copy in the training data" in verdict.reason
    assert main(["--home", str(home.root), "evaluate", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    assert out["gold_leaked"] == 7 and out["n_gold"] == 293


def test_near_copies_are_found_and_distinct_rows_are_not():
    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    X, gold_rows, train_rows = info["X"], info["parts"]["gold"], info["parts"]["train"]
    import pandas as pd

    def frame(rows, shift=0.0):
        f = pd.DataFrame(X[rows], columns=PIXELS)
        f[PIXELS[10]] += shift  # a near copy: one pixel (of values 0-16) moved a little
        f["feature_hash"] = [f"h{r}-{shift}" for r in rows]  # no shared hash: only distance can find them
        return f

    schema = dict.fromkeys(PIXELS, "numeric")
    train = pd.concat([frame(train_rows), frame(gold_rows[:5], 0.05)], ignore_index=True)
    found = leaked_gold(frame(gold_rows), train, schema)
    assert found[:5].all() and found.sum() == 5


def test_near_copies_of_training_images_are_left_out_of_gold(tmp_path):
    """Image files: a gold image that is a resized, re-encoded or shifted copy of a training image is
    found in the image embedding (not only by its file's hash); distinct digits are not."""
    import pandas as pd

    from data_engine.demo.image_files import IMAGE_FILES_CONFIG, write_digit_files
    from data_engine.ship.evaluation import load_gold
    from data_engine.ship.leakage import without_leaked_gold
    from data_engine.steps import ingest_step
    from tests.homes import make_home as make_config_home

    home = make_config_home(tmp_path, IMAGE_FILES_CONFIG)
    files = write_digit_files(home.landing / "digits", n=260, near_copies=8, seed=3)
    manifest, copies = files.manifest, files.near_copies
    # Each copy sits on the other side of the gold/training line from its source: a gold copy of a
    # training image, or a training copy of a gold image; either way one gold example is leaked.
    gold_side = set(manifest.loc[manifest["id"].str.startswith("d") & (manifest["id"] >= "d0200"), "id"])
    gold_side |= set(copies.loc[~copies["copy_of"].isin(gold_side), "id"])
    train, gold = manifest[~manifest["id"].isin(gold_side)], manifest[manifest["id"].isin(gold_side)]
    assert len(gold) == 60 + (copies["copy_of"] < "d0200").sum()
    train.to_csv(home.landing / "digits" / "train.csv", index=False)
    gold.to_csv(home.landing / "digits" / "gold.csv", index=False)
    ingest_step(home, [home.landing / "digits" / "train.csv"])
    ingest_step(home, [home.landing / "digits" / "gold.csv"], gold=True)
    with open_warehouse(home) as con:
        scored, leaked = without_leaked_gold(con, home.config, load_gold(con, home.config))
    assert leaked == 8 and len(scored) == len(gold) - 8
    leaked_ids = set(gold["id"]) - set(scored["example_id"].astype(str).str.removeprefix("gold:"))
    assert leaked_ids == set(copies.loc[copies["copy_of"] < "d0200", "id"]) | set(
        copies.loc[copies["copy_of"] >= "d0200", "copy_of"])
