"""A user's own detector's boxes and tagger's spans / token probabilities (``[mining] predictions =
"external"``, one JSONL row per image or text in ``landing/predictions/``) are mined with cleanlab's
object-detection / token-classification check instead of the built-in baselines; a bad row is one
line naming the file, the line and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.demo.drawn_boxes import CLASSES, inject_box_errors, make_scenes, write_scenes
from data_engine.demo.entities import inject_errors, make_texts
from data_engine.errors import EngineError
from data_engine.steps import ingest_step, mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import tokens as tk
from tests.homes import make_home

BOXES = {"dataset": {"name": "boxes", "modality": "image", "task": "detection", "id_column": "id",
                     "label_column": "boxes", "image_column": "image", "feature_columns": [], "classes": list(CLASSES)},
         "mining": {"n_jobs": 1, "predictions": "external"}, "review": {"budget": 20}, "gate": {"metric": "map50"}}
TYPES = ["LOC", "ORG", "PER"]
SPANS = {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id", "label_column": "spans",
                     "text_column": "text", "feature_columns": [], "classes": TYPES},
         "mining": {"predictions": "external", "embedding": "tfidf"}, "review": {"budget": 20}, "gate": {"metric": "f1"}}


def _no_fits(monkeypatch: pytest.MonkeyPatch) -> None:
    import data_engine.tasks.box_model as box_model
    import data_engine.tasks.ner_model as ner_model

    monkeypatch.setattr(box_model, "out_of_fold_boxes", lambda *a, **k: pytest.fail("fitted the baseline detector"))
    monkeypatch.setattr(ner_model, "out_of_fold_tokens", lambda *a, **k: pytest.fail("fitted the baseline tagger"))


def _mine_external(home, name: str, rows: list[dict], monkeypatch: pytest.MonkeyPatch) -> str:
    """Land ``rows`` as ``landing/predictions/<name>.jsonl``, mine without fitting a model; the run id."""
    _write(home.predictions_landing / f"{name}.jsonl", rows)
    _no_fits(monkeypatch)
    mined = mine_step(home)
    assert mined.summary.model_spec.startswith(f"external:{name}/")
    return mined.summary.run_id


def _refused(home, name: str, rows: list[dict], change, words: str) -> None:
    """``rows`` changed by ``change`` and landed as ``<name>.jsonl`` stop mining with ``words``."""
    change(rows)
    _write(home.predictions_landing / f"{name}.jsonl", rows)
    with pytest.raises(EngineError, match=words):
        mine_step(home)


def _flagged(home, run_id: str) -> set[str]:
    with open_warehouse(home) as con:
        return {r[0] for r in con.execute("SELECT example_id FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                          "AND is_issue", [run_id]).fetchall()}


@pytest.fixture()
def boxes_home(tmp_path: Path):
    home = make_home(tmp_path / "home", BOXES)
    scenes = inject_box_errors(make_scenes(40, seed=8), rate=0.3, seed=9)
    ingest_step(home, [write_scenes(home.landing, scenes, prefix="s", name="train")])
    home.predictions_landing.mkdir(parents=True, exist_ok=True)
    return home, scenes


def _detector_rows(scenes) -> list[dict]:
    """A good detector's boxes: the true ones, scored 0.97; even images named by the path the annotation
    file wrote, odd ones by example id, one by its bare file name."""
    rows = []
    for i, s in enumerate(scenes):
        key = {"image": f"images/s{i:04d}.png"} if i % 2 == 0 else {"example_id": f"s{i:04d}"}
        if i == 1:
            key = {"image": f"/somewhere/else/s{i:04d}.png"}
        rows.append({**key, "boxes": [{**b._asdict(), "score": 0.97} for b in s.truth]})
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_a_users_detector_boxes_are_mined_with_cleanlabs_object_detection_check(boxes_home, monkeypatch):
    home, scenes = boxes_home
    run_id = _mine_external(home, "yolo", _detector_rows(scenes), monkeypatch)
    wrong = {f"s{i:04d}" for i, s in enumerate(scenes) if s.error}
    assert len(wrong) >= 8
    # The detector saw the true boxes: every image with an injected error, and only those, is flagged.
    assert _flagged(home, run_id) == wrong
    with open_warehouse(home) as con:
        notes = dict(con.execute("SELECT example_id, reason FROM issues WHERE run_id = ? AND issue_type = 'label' "
                                 "AND is_issue", [run_id]).fetchall())
    # The reviewer's note names the suspect box by its kind.
    words = {"missing": "overlooked", "swapped": "another class"}
    for i, s in enumerate(scenes):
        if s.error in words:
            assert words[s.error] in notes[f"s{i:04d}"], (s.error, notes[f"s{i:04d}"])


@pytest.mark.parametrize("change, words", [
    (lambda rows: rows[0]["boxes"].append({"label": "star", "x": 1, "y": 1, "w": 5, "h": 5, "score": 0.9}),
     r"yolo.jsonl line 1, key 'boxes'\[\d\]: class 'star' is not one of the classes"),
    (lambda rows: rows[2]["boxes"].append({"label": "disc", "x": 1, "y": 1, "w": 5, "h": 5}),
     r"yolo.jsonl line 3, key 'boxes'\[\d\]: 'score' must be a number in \[0, 1\]"),
    (lambda rows: rows[3]["boxes"].append({"label": "disc", "x": 1, "y": 1, "w": 0, "h": 5, "score": 0.5}),
     r"yolo.jsonl line 4, key 'boxes'\[\d\]: w and h must be positive pixels"),
    (lambda rows: rows.append({"example_id": "s0000", "boxes": []}),
     r"yolo.jsonl line 41: image 's0000' was given on line 1"),
    (lambda rows: rows[4].pop("boxes"), r"yolo.jsonl line 5: key 'boxes' must be a list"),
    (lambda rows: rows[5].pop("example_id"), r"yolo.jsonl line 6: key 'example_id' \(or 'image'\) must name the image"),
])
def test_a_bad_detector_row_is_one_line_naming_file_line_and_key(boxes_home, change, words):
    home, scenes = boxes_home
    _refused(home, "yolo", _detector_rows(scenes), change, words)


@pytest.fixture()
def spans_home(tmp_path: Path):
    home = make_home(tmp_path / "home", SPANS)
    examples = inject_errors(make_texts(80, seed=31), rate=0.15, seed=32)
    path = home.landing / "news.jsonl"
    _write(path, [{"id": f"n{i:03d}", "text": e.text, "spans": json.loads(e.given_label)}
                  for i, e in enumerate(examples)])
    ingest_step(home, [path])
    home.predictions_landing.mkdir(parents=True, exist_ok=True)
    return home, examples


def _tagger_rows(examples, form: str = "both") -> list[dict]:
    """A good tagger: texts as scored spans (the true entities, 0.95) or as its own tokens (words as
    text) with BIO probabilities (0.9 on the true tag); ``both``: even texts one way, odd ones the other."""
    tags = ["O"] + [f"{p}-{t}" for t in TYPES for p in ("B", "I")]
    rows = []
    for i, e in enumerate(examples):
        if form == "spans" or (form == "both" and i % 2 == 0):
            rows.append({"example_id": f"n{i:03d}",
                         "spans": [{**s._asdict(), "score": 0.95} for s in e.true_spans]})
            continue
        words = [w for w, _, _ in tk.tokenize(e.text)]
        off = tk.offsets(e.text)
        io = tk.spans_to_tags(e.true_spans, off, TYPES)
        probs = []
        for j, k in enumerate(io):
            p = [0.1 / (len(tags) - 1)] * len(tags)
            first = j == 0 or io[j - 1] != k
            p[0 if k == 0 else tags.index(f"{'B' if first else 'I'}-{TYPES[k - 1]}")] = 0.9
            probs.append(p)
        rows.append({"example_id": f"n{i:03d}", "tokens": words, "tags": tags, "probs": probs})
    return rows


@pytest.mark.parametrize("form", ["spans", "tokens"])
def test_a_users_tagger_spans_or_token_probabilities_are_mined_with_cleanlab(spans_home, monkeypatch, form):
    home, examples = spans_home
    run_id = _mine_external(home, "tagger", _tagger_rows(examples, form), monkeypatch)
    wrong = {f"n{i:03d}" for i, e in enumerate(examples) if e.error}
    assert len(wrong) >= 6
    assert _flagged(home, run_id) == wrong


@pytest.mark.parametrize("change, words", [
    (lambda rows: rows[0]["spans"].append({"start": 0, "end": 2, "label": "CITY", "score": 0.5}),
     r"tagger.jsonl line 1, key 'spans'\[\d\]: label 'CITY' is not one of the types"),
    (lambda rows: rows[2]["spans"].append({"start": 0, "end": 9999, "label": "PER", "score": 0.5}),
     r"tagger.jsonl line 3, key 'spans'\[\d\]: start and end must be character offsets inside the text"),
    (lambda rows: rows[1]["tokens"].__setitem__(1, "zzz-not-there"),
     r"tagger.jsonl line 2, key 'tokens'\[1\]: 'zzz-not-there' is not in the text"),
    (lambda rows: rows[3]["probs"][0].__setitem__(0, 5.0),
     r"tagger.jsonl line 4, key 'probs'\[0\]: probabilities sum to"),
    (lambda rows: rows[3].__setitem__("tags", ["O", "B-CITY"]),
     r"tagger.jsonl line 4, key 'tags': 'B-CITY' is not O or one of the types"),
    (lambda rows: rows[4].__setitem__("tokens", []), r"tagger.jsonl line 5: give either key 'spans'"),
    (lambda rows: (rows[4].pop("spans"), rows[4].update(tokens=[], probs=[])),
     r"tagger.jsonl line 5, key 'tokens': empty, but the text has \d+ words; give the tagger's tokens"),
    (lambda rows: rows.append({"example_id": "n000", "spans": []}), r"tagger.jsonl line 81: example_id 'n000' was given"),
])
def test_a_bad_tagger_row_is_one_line_naming_file_line_and_key(spans_home, change, words):
    home, examples = spans_home
    _refused(home, "tagger", _tagger_rows(examples), change, words)


def test_an_image_reference_two_examples_share_is_refused_by_name(tmp_path):
    from data_engine.tasks.box_external import external_box_rows

    path = tmp_path / "det.jsonl"
    sources = {"a/images/1.png": "e1", "b/images/1.png": "e2", "images/2.png": "", "images/3.png": "e3"}
    _write(path, [{"image": "/elsewhere/3.png", "boxes": []}, {"example_id": "e1", "boxes": []}])
    assert external_box_rows(path, CLASSES, sources).index.tolist() == ["e3", "e1"]
    for key, words in [("images/2.png", "was landed for several examples"), ("1.png", "matches 2 landed images"),
                       ("x/2.png", "matches 2 landed images")]:
        _write(path, [{"image": key, "boxes": []}])
        with pytest.raises(EngineError, match=rf"det.jsonl line 1, key 'image': .*{words}"):
            external_box_rows(path, CLASSES, sources)


def test_a_taggers_offsets_and_scored_spans_become_token_probabilities(tmp_path):
    import numpy as np

    from data_engine.tasks.span_external import external_token_rows

    text = "Ada Lovelace met Babbage"
    path = tmp_path / "t.jsonl"
    _write(path, [
        # the tagger's own tokens as offsets, probabilities over the default tags O, LOC, ORG, PER
        {"example_id": "a", "tokens": [[0, 3], [4, 12], [13, 16], [17, 24]],
         "probs": [[0.1, 0, 0, 0.9], [0.2, 0, 0, 0.8], [1, 0, 0, 0], [0.3, 0.1, 0, 0.6]]},
        # overlapping scored spans: the higher score is the token's
        {"example_id": 7, "spans": [{"start": 0, "end": 12, "label": "PER", "score": 0.9},
                                    {"start": 4, "end": 12, "label": "ORG", "score": 0.6}]},
    ])
    rows = external_token_rows(path, TYPES, {"a": text, "7": text})
    assert rows.index.tolist() == ["a", "7"]
    off, probs = tk.unpack(rows.loc["a"].to_numpy(), len(TYPES))
    assert off.tolist() == [[0, 3], [4, 12], [13, 16], [17, 24]]
    assert probs[3].tolist() == [0.3, 0.1, 0, 0.6]
    off, probs = tk.unpack(rows.loc["7"].to_numpy(), len(TYPES))
    assert off.tolist() == tk.offsets(text).tolist()
    assert np.allclose(probs, [[0.1, 0, 0, 0.9], [0.1, 0, 0, 0.9], [1, 0, 0, 0], [1, 0, 0, 0]])


def test_a_predictions_file_with_a_byte_order_mark_is_read_like_one_without(tmp_path):
    """Spreadsheet tools and PowerShell write UTF-8 with a byte-order mark; the oracle and ingest read
    such files, and so do external predictions (the first line was refused as 'not valid JSON')."""
    from data_engine.tasks.span_external import external_token_rows

    text = "Ada Lovelace met Babbage"
    plain, marked = tmp_path / "plain.jsonl", tmp_path / "marked.jsonl"
    _write(plain, [{"example_id": "a", "spans": [{"start": 0, "end": 12, "label": "PER", "score": 0.9}]}])
    marked.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    rows = external_token_rows(marked, TYPES, {"a": text})
    assert rows.index.tolist() == ["a"]
    assert rows.equals(external_token_rows(plain, TYPES, {"a": text}))
