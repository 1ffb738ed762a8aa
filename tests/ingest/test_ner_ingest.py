"""NER labels in files: JSONL rows with ``text`` and ``spans`` stored as one canonical span set;
malformed spans, spans outside their text, overlapping spans and unknown types quarantined with the
reason; ``[]`` is a label, a missing ``spans`` is not."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable

import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks.spans import canonical

CONFIG = """\
[dataset]
name = "news"
modality = "text"
task = "ner"
id_column = "id"
label_column = "spans"
text_column = "text"
{extra}
"""


def _ingest(home: Home, name: str, rows: list[dict]):
    path = home.landing / name
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        stored = dict(con.execute("SELECT example_id, spans FROM examples ORDER BY example_id").fetchall())
        quarantined = [r[0] for r in con.execute(
            "SELECT reason FROM quarantine WHERE batch_id = ? ORDER BY row_number", [result.batch_id]).fetchall()]
        return result, stored, quarantined, load_classes(con)


def test_spans_are_stored_canonical_and_types_inferred(make_home: Callable[..., Home]) -> None:
    home = make_home(CONFIG.format(extra=""))
    rows = [
        {"id": "1", "text": "Alice met Bob in Paris.",
         "spans": [{"start": 17, "end": 22, "label": "LOC"}, {"label": "PER", "end": 5, "start": 0},
                   {"start": 10, "end": 13, "label": "PER", "note": "extra keys are dropped"}]},
        {"id": "2", "text": "Nothing here.", "spans": []},
        {"id": "3", "text": "No label given."},
        {"id": "4", "text": "Café Zoë opened.", "spans": [{"start": 0, "end": 8, "label": " ORG "}]},
    ]
    result, stored, quarantined, classes = _ingest(home, "a.jsonl", rows)
    assert quarantined == [] and result.rows_ok == 4
    assert stored["1"] == canonical([(0, 5, "PER"), (10, 13, "PER"), (17, 22, "LOC")])
    assert stored["1"] == '[{"start":0,"end":5,"label":"PER"},{"start":10,"end":13,"label":"PER"},{"start":17,"end":22,"label":"LOC"}]'
    assert stored["2"] == "[]" and stored["3"] is None
    # Offsets count characters (not bytes): the accented text's span ends at 8.
    assert stored["4"] == '[{"start":0,"end":8,"label":"ORG"}]'
    assert classes == ["LOC", "ORG", "PER"]


def test_bad_spans_are_quarantined_with_the_reason(make_home: Callable[..., Home]) -> None:
    home = make_home(CONFIG.format(extra='classes = ["LOC", "PER"]'))
    rows = [
        {"id": "ok", "text": "Alice in Paris.", "spans": [{"start": 0, "end": 5, "label": "PER"}]},
        {"id": "out", "text": "Alice.", "spans": [{"start": 0, "end": 9, "label": "PER"}]},
        {"id": "empty", "text": "Alice.", "spans": [{"start": 3, "end": 3, "label": "PER"}]},
        {"id": "over", "text": "Alice Smith.", "spans": [{"start": 0, "end": 5, "label": "PER"},
                                                         {"start": 2, "end": 11, "label": "PER"}]},
        {"id": "type", "text": "Acme rose.", "spans": [{"start": 0, "end": 4, "label": "ORG"}]},
        {"id": "shape", "text": "Acme rose.", "spans": [{"start": "0", "end": 4, "label": "LOC"}]},
        {"id": "notlist", "text": "Acme rose.", "spans": "Acme"},
    ]
    result, stored, quarantined, _ = _ingest(home, "b.jsonl", rows)
    assert result.rows_ok == 1 and set(stored) == {"ok"}
    assert len(quarantined) == 6
    out, empty, over, typ, shape, notlist = quarantined
    assert "span [0, 9) PER is outside the text (0-6)" in out
    assert "span [3, 3) PER is outside the text (0-6) or empty" in empty
    assert "span [2, 11) overlaps [0, 5)" in over
    assert "entity type ORG is not one of the types (LOC, PER)" in typ
    assert "is not a list of spans" in shape and "is not a list of spans" in notlist


def test_relanding_reordered_spans_makes_no_new_version(make_home: Callable[..., Home]) -> None:
    home = make_home(CONFIG.format(extra='classes = ["LOC", "PER"]'))
    a = [{"id": "1", "text": "Alice in Paris.", "spans": [{"start": 0, "end": 5, "label": "PER"},
                                                          {"start": 9, "end": 14, "label": "LOC"}]}]
    b = [{"id": "1", "text": "Alice in Paris.", "spans": [{"label": "LOC", "start": 9, "end": 14},
                                                          {"start": 0, "end": 5, "label": "PER"}]}]
    _ingest(home, "a.jsonl", a)
    result, _, _, _ = _ingest(home, "b.jsonl", b)
    assert result.rows_ok == 1
    with open_warehouse(home) as con:
        assert con.execute("SELECT count(*) FROM examples WHERE example_id = '1'").fetchone()[0] == 1


CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
in IN O O
Lagos NNP B-NP I-LOC

Bad NN O B_PER
"""


@pytest.mark.parametrize("name", ["train.conll", "a?b #1 %20.bio.gz", "*[x]{1,2}.iob"])
def test_conll_file_becomes_one_row_per_sentence(make_home: Callable[..., Home], name: str) -> None:
    home = make_home(CONFIG.format(extra="").replace('id_column = "id"', 'id_column = "sentence"'))
    path = home.landing / name
    data = CONLL.encode("utf-8")
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        stored = dict(con.execute("SELECT example_id, text || ' | ' || spans FROM examples ORDER BY example_id").fetchall())
        reasons = [r[0] for r in con.execute("SELECT reason FROM quarantine").fetchall()]
        classes = load_classes(con)
    assert result.rows_in == 3 and result.rows_ok == 2
    assert stored["1"] == ('EU rejects German call . | [{"start":0,"end":2,"label":"ORG"},'
                           '{"start":11,"end":17,"label":"MISC"}]')
    # IOB1: I-LOC after I-PER starts a new entity.
    assert stored["2"] == ('Peter Blackburn in Lagos | [{"start":0,"end":15,"label":"PER"},'
                           '{"start":19,"end":24,"label":"LOC"}]')
    assert len(reasons) == 1 and "line 14: tag 'B_PER' is not O, B-type or I-type" in reasons[0]
    assert classes == ["LOC", "MISC", "ORG", "PER"]
