"""The user's trainer's contract for boxes and spans: TRAIN.parquet's label is the stored box or
span set (JSON text), the manifest names the dataset's classes; PRED.parquet holds the boxes, or the
spans or tokens and probabilities, of each row (Parquet lists or their JSON text), read into the
task's packed predictions; a malformed one (missing id, bad box field, probabilities of the wrong
shape, NaN, ...) fails the fit naming file, row and column, before anything could be registered."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.store.config import parse_config
from data_engine.tasks import box_pack as bp
from data_engine.tasks import task_for
from data_engine.tasks import tokens as tk
from data_engine.tasks.box_trainer import CommandBoxes
from data_engine.tasks.ner_trainer import CommandSpans
from data_engine.trainers.command import CommandClassifier
from data_engine.trainers.worker import PredictWorker
from tests.ship.test_own_model_tags import RECORDER_HEAD

CLASSES = ("disc", "square", "cross")
TYPES = ("LOC", "ORG", "PER")
TEXTS = ["Ada lives in Paris now", "Bob met Ada", "Nothing here at all"]

# The recording trainer (tests/ship/test_own_model_tags.py), answering a fixed prediction per row;
# the code after `p = ...` may break PRED.parquet.
RECORDER = RECORDER_HEAD
BOXES = """box = {"label": meta["classes"][1], "x": 1.0, "y": 2.0, "w": 3.0, "h": 4.0, "score": 0.75}
p = pd.DataFrame({"example_id": X["example_id"], "boxes": [[box] for _ in range(len(X))]})
"""
# Per text: its whitespace tokens as strings, the first one PER at 0.8, the others outside.
TOKENS = """toks = [t.split() for t in X["text"]]
probs = [[[0.2, 0.0, 0.0, 0.8]] + [[1.0, 0.0, 0.0, 0.0]] * (len(t) - 1) for t in toks]
p = pd.DataFrame({"example_id": X["example_id"], "tokens": toks, "probs": probs})
"""


def _trainer(tmp_path: Path, answer: str, fault: str = "") -> list[str]:
    script = tmp_path / "recorder.py"
    script.write_text(RECORDER + answer + fault + "\np.to_parquet(args['--out'], index=False)\n", encoding="utf-8")
    return [sys.executable, str(script)]


def _images() -> tuple[pd.DataFrame, np.ndarray]:
    X = pd.DataFrame({"example_id": ["a", "b", "c"], "image": ["/img/a.png", "/img/b.png", "/img/c.png"]})
    labels = ['[{"label":"disc","x":3,"y":4,"w":20,"h":21}]', "[]",
              '[{"label":"cross","x":1,"y":1,"w":5,"h":5},{"label":"disc","x":9,"y":9,"w":5,"h":5}]']
    return X, bp.encode(labels, CLASSES)


def _texts() -> tuple[pd.DataFrame, list[str]]:
    X = pd.DataFrame({"example_id": ["t0", "t1", "t2"], "text": TEXTS})
    return X, ['[{"start":0,"end":3,"label":"PER"},{"start":13,"end":18,"label":"LOC"}]',
               '[{"start":0,"end":3,"label":"PER"},{"start":8,"end":11,"label":"PER"}]', "[]"]


def _given(model) -> tuple[pd.DataFrame, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        d = model.unpack_model(Path(tmp) / "m")
        return pd.read_parquet(d / "TRAIN.parquet"), json.loads((d / "MANIFEST.json").read_text())


def test_box_train_parquet_holds_the_stored_box_sets_and_pred_the_scored_boxes(tmp_path):
    X, y = _images()
    model = CommandBoxes(_trainer(tmp_path, BOXES), timeout_s=60, tags=CLASSES).fit(X, y)
    train, meta = _given(model)
    assert meta["task"] == "detection" and meta["classes"] == list(CLASSES) and "class_names" not in meta
    assert list(train["label"]) == ['[{"label":"disc","x":3,"y":4,"w":20,"h":21}]', "[]",
                                    '[{"label":"cross","x":1,"y":1,"w":5,"h":5},{"label":"disc","x":9,"y":9,"w":5,"h":5}]']
    assert list(train["example_id"]) == ["a", "b", "c"] and list(train["image"]) == list(X["image"])
    packed = model.predict_proba(X)
    assert packed.shape == (3, bp.MAX_BOXES * bp.SLOT)
    np.testing.assert_array_equal(packed[:, :bp.SLOT], np.tile([1.0, 2.0, 3.0, 4.0, 1.0, 0.75], (3, 1)))
    assert (packed[:, bp.SLOT + 4] == -1).all()  # one box per image: the other slots unused
    assert list(model.predict(X)) == ['[{"label":"square","x":1,"y":2,"w":3,"h":4,"score":0.75}]'] * 3


def test_boxes_may_be_json_text_and_the_mining_members_become_the_box_trainer(tmp_path):
    X, y = _images()
    text = BOXES + "p['boxes'] = [json.dumps(b) for b in p['boxes']]\n"
    model = CommandBoxes(_trainer(tmp_path, text), timeout_s=60, manifest={"class_names": list(CLASSES)}).fit(X, y)
    assert list(model.classes_) == list(CLASSES)  # the engine's class names index the encoded labels
    assert model.predict_proba(X)[0, :bp.SLOT].tolist() == [1.0, 2.0, 3.0, 4.0, 1.0, 0.75]
    cfg = parse_config({"dataset": {"name": "b", "modality": "image", "task": "detection", "label_column": "boxes",
                                    "image_column": "image", "classes": list(CLASSES)},
                        "model": {"trainer": "command", "command": ["python", "train.py"]}})
    (member,) = task_for(cfg.dataset).members_for({"command": CommandClassifier(["python", "t.py"], 9)}).values()
    assert type(member) is CommandBoxes and member.command == ["python", "t.py"] and member.timeout_s == 9


BOX_FAULTS = [
    ("p = p.iloc[1:]", r"trainer `predict`: PRED.parquet misses 1 of 3 example_id, e.g. 'a'"),
    ("p = p.rename(columns={'boxes': 'detections'})", r"PRED.parquet has no 'boxes' column"),
    ("box['label'] = 'star'; p['boxes'] = [[box]] * len(X)",
     r"row example_id='a', column 'boxes'\[0\]: class 'star' is not one of the classes \(disc, square, cross\)"),
    ("box['w'] = -3.0; p['boxes'] = [[box]] * len(X)", r"row example_id='a', column 'boxes'\[0\]: w and h must be positive"),
    ("box['x'] = float('nan'); p['boxes'] = [[box]] * len(X)", r"column 'boxes'\[0\]: box .* x must be a number of pixels"),
    ("box['score'] = float('nan'); p['boxes'] = [[box]] * len(X)", r"'boxes'\[0\]: 'score' must be a number in \[0, 1\]"),
    ("box['score'] = 1.5; p['boxes'] = [[box]] * len(X)", r"'boxes'\[0\]: 'score' must be a number in \[0, 1\]"),
    ("p['boxes'] = [None] + [[box]] * (len(X) - 1)", r"row example_id='a', column 'boxes' is empty"),
    ("p['boxes'] = ['[{oops'] * len(X)", r"row example_id='a', column 'boxes': '\[\{oops' is not a list or its JSON"),
]


@pytest.mark.parametrize(("fault", "message"), BOX_FAULTS)
def test_a_malformed_box_prediction_fails_the_fit_naming_file_row_and_column(tmp_path, fault, message):
    X, y = _images()
    with pytest.raises(EngineError, match=message):
        CommandBoxes(_trainer(tmp_path, BOXES, fault), timeout_s=60, tags=CLASSES).fit(X, y)


def test_span_train_parquet_holds_the_stored_span_sets_and_pred_token_probabilities(tmp_path):
    X, labels = _texts()
    model = CommandSpans(_trainer(tmp_path, TOKENS), timeout_s=60, tags=TYPES, text_column="text").fit(X, labels)
    train, meta = _given(model)
    assert meta["task"] == "ner" and meta["classes"] == list(TYPES) and list(train["label"]) == labels
    packed = model.predict_proba(X)
    assert packed.shape == (3, tk.MAX_TOKENS * tk.slot_width(3))
    off, probs = tk.unpack(packed[0], 3)
    np.testing.assert_array_equal(off, [[0, 3], [4, 9], [10, 12], [13, 18], [19, 22]])
    np.testing.assert_array_equal(probs[:2], [[0.2, 0.0, 0.0, 0.8], [1.0, 0.0, 0.0, 0.0]])
    assert list(model.predict(X)) == ['[{"start":0,"end":3,"label":"PER"}]', '[{"start":0,"end":3,"label":"PER"}]',
                                      '[{"start":0,"end":7,"label":"PER"}]']


def test_spans_with_scores_bio_tags_and_offsets_are_read_as_the_external_file_is(tmp_path):
    X, labels = _texts()
    spans = ("p = pd.DataFrame({'example_id': X['example_id'], 'spans': "
             "[json.dumps([{'start': 0, 'end': 3, 'label': 'ORG', 'score': 0.9}])] * len(X)})\n")
    model = CommandSpans(_trainer(tmp_path, spans), timeout_s=60, tags=TYPES).fit(X, labels)
    _, probs = tk.unpack(model.predict_proba(X)[1], 3)
    np.testing.assert_allclose(probs[0], [0.1, 0.0, 0.9, 0.0])  # ORG at its score, outside at the rest
    bio = TOKENS + ("p['tokens'] = [[[0, 3]] for _ in range(len(X))]; p['tags'] = [['O', 'B-LOC', 'I-LOC']] * len(X); "
                    "p['probs'] = [[[0.5, 0.25, 0.25]]] * len(X)\n")
    model = CommandSpans(_trainer(tmp_path, bio), timeout_s=60, tags=TYPES).fit(X, labels)
    off, probs = tk.unpack(model.predict_proba(X)[0], 3)
    np.testing.assert_array_equal(off, [[0, 3]])
    np.testing.assert_allclose(probs, [[0.5, 0.5, 0.0, 0.0]])  # B- and I-LOC summed into LOC


SPAN_FAULTS = [
    ("p = p.iloc[:2]", r"PRED.parquet misses 1 of 3 example_id, e.g. 't2'"),
    ("p['probs'] = [q[:-1] for q in p['probs']]", r"row example_id='t0', key 'probs': must hold one list per token \(5\)"),
    ("p['probs'] = [[r[:3] for r in q] for q in p['probs']]",
     r"row example_id='t0', key 'probs'\[0\]: must be 4 probabilities \(one per tag\)"),
    ("p['probs'] = [[[float('nan'), 0, 0, 1.0]] + q[1:] for q in p['probs']]",
     r"row example_id='t0', key 'probs'\[0\]: must be 4 probabilities"),
    ("p['probs'] = [[[0.5, 0, 0, 0.8]] + q[1:] for q in p['probs']]",
     r"row example_id='t0', key 'probs'\[0\]: probabilities sum to 1.3000, not 1"),
    ("p['tokens'] = [['Zed'] + t[1:] for t in p['tokens']]", r"row example_id='t0', key 'tokens'\[0\]: 'Zed' is not in the text"),
    ("p['spans'] = '[]'", r"PRED.parquet must have a 'spans' column or 'tokens' and 'probs' columns, not both"),
    ("p = p.drop(columns=['probs'])", r"must have a 'spans' column or 'tokens' and 'probs' columns"),
    ("p = pd.DataFrame({'example_id': X['example_id'], 'spans': ['[{\"start\": 0, \"end\": 99, \"label\": \"PER\", "
     "\"score\": 1}]'] * len(X)})", r"row example_id='t0', key 'spans'\[0\]: start and end must be character offsets"),
    ("p = pd.DataFrame({'example_id': X['example_id'], 'spans': ['[{\"start\": 0, \"end\": 3, \"label\": \"GPE\", "
     "\"score\": 1}]'] * len(X)})", r"key 'spans'\[0\]: label 'GPE' is not one of the types \(LOC, ORG, PER\)"),
]


@pytest.mark.parametrize(("fault", "message"), SPAN_FAULTS)
def test_a_malformed_span_prediction_fails_the_fit_naming_file_row_and_key(tmp_path, fault, message):
    X, labels = _texts()
    with pytest.raises(EngineError, match=message):
        CommandSpans(_trainer(tmp_path, TOKENS, fault), timeout_s=60, tags=TYPES).fit(X, labels)


def test_the_serve_worker_answers_boxes_and_spans_as_the_trainers_predict(tmp_path):
    import copy

    from data_engine.tasks.box_estimator import aligned_boxes
    from data_engine.tasks.ner_model import aligned_predictions

    (tmp_path / "b").mkdir()
    (tmp_path / "s").mkdir()
    cases = [(CommandBoxes(_trainer(tmp_path / "b", BOXES), timeout_s=60, tags=CLASSES), *_images(), BOXES,
              aligned_boxes),
             (CommandSpans(_trainer(tmp_path / "s", TOKENS), timeout_s=60, tags=TYPES), *_texts(), TOKENS,
              aligned_predictions)]
    for model, X, y, answer, aligned in cases:
        model.fit(X, y)
        # The worker protocol of the docs around the recorder's predict body: `COMMAND serve --model DIR`.
        script = Path(model.command[1]).with_name("serve.py")
        script.write_text("import json, sys\nimport numpy as np, pandas as pd\n"
                          "meta = json.load(open(sys.argv[3] + '/MANIFEST.json'))\n"
                          "print(json.dumps({'ready': True}), flush=True)\nfor line in sys.stdin:\n"
                          "    r = json.loads(line); X = pd.read_parquet(r['input'])\n"
                          + "".join(f"    {ln}\n" for ln in answer.splitlines())
                          + "    p.to_parquet(r['out'], index=False); print(json.dumps({'id': r['id']}), flush=True)\n")
        served = copy.copy(model)
        served.command = [sys.executable, str(script)]
        worker = PredictWorker(served, timeout_s=30).start()
        try:
            np.testing.assert_array_equal(aligned(worker, X, model.types_), aligned(model, X, model.types_))
            assert list(worker.predict(X)) == list(model.predict(X))
            assert worker.answered == 2
        finally:
            worker.stop()


@pytest.mark.parametrize("name", ["train_boxes.py", "train_spans.py"])
def test_the_docs_print_the_example_box_and_span_trainers_the_loop_tests_run(name):
    root = Path(__file__).resolve().parents[2]
    doc = (root / "docs" / "own-model.md").read_text(encoding="utf-8")
    block = doc.split(f"`examples/own_model/{name}`:\n\n```python\n", 1)[1].split("```", 1)[0]
    assert block == (root / "examples" / "own_model" / name).read_text(encoding="utf-8")
