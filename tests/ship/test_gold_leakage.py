"""Issue 24, gold leakage: gold examples with an exact or near copy in the training data are left out of
what the gate scores, and the verdict says how many (``gold_leaked``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

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


def test_the_champion_is_rescored_on_the_gold_the_gate_scores(tmp_path):
    """The champion's re-score on changed gold leaves out the gold examples that copy a training example,
    as the gate does (one selection, ``leakage.scored_gold``): its recorded n is the gate's, and its
    figure is the one on those rows, not the one with the copies left in. The 7 planted gold rows are
    relabelled in place with the 3 after them: the champion learnt their copies' old labels."""
    import pandas as pd

    from data_engine.ship.deploy import promote_gated
    from data_engine.ship.evaluation import predict_gold
    from data_engine.ship.scoring import rescore_champion

    info = digits_split(n_train=600, n_gold=300, n_unlabeled=0)
    ids, X, y, gold = info["ids"], info["X"], info["y"], info["parts"]["gold"]
    home, verdict = _gate(tmp_path, gold[:7])
    assert verdict.promote and verdict.gold_leaked == 7 and verdict.n_gold == 293
    labels = y[gold].copy()
    labels[:10] = ((labels[:10].astype(int) + 1) % 10).astype(str)
    with open_warehouse(home) as con:
        promote_gated(con, home, verdict.candidate_version)
        insert_examples(con, home, list(ids[gold]), X[gold], list(labels), batch="gold-2", gold=True)
        result = rescore_champion(con, home)
        stored = con.execute("SELECT n_gold, accuracy FROM gold_scores WHERE model_version = ? ORDER BY score_id",
                             [verdict.candidate_version]).fetchall()
        pred = predict_gold(home, gate.get_model(con, verdict.candidate_version), pd.DataFrame(X[gold], columns=PIXELS))
    left_out, left_in = float(np.mean(pred[7:] == labels[7:])), float(np.mean(pred == labels))
    assert (pred[:7] == y[gold][:7]).all()  # the copies' old labels: every one of the 7 is wrong on new gold
    assert [n for n, _ in stored] == [293, 293]  # the gate's score of the first model, then the re-score
    assert result.accuracy == pytest.approx(left_out) and stored[-1][1] == pytest.approx(left_out)
    assert result.gold_leaked == 7
    assert round(left_out, 4) == 0.9761 and round(left_in, 4) == 0.9533
    assert ("re-scored on 293 gold examples (left out 7 gold example(s) with an exact or near copy in the training "
            "data, as the gate does): accuracy ") in result.line
