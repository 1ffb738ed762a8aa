"""Issue 11: the real-world files of ``tests/cases/real-world/`` (copied from the shared cases; its
README says what happened and what a user expects), each as the README's "what a user expects".

Rare classes in mining (11b/11e) are tested in ``test_rare_classes.py``, ``/predict`` with empty or
invalid text (17) in ``test_serve.py``; generated variants of every kind in ``test_real_world_variants.py``.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import pytest

from data_engine.errors import EngineError
from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.ingest.landing import decide_landing, landed_path
from data_engine.store.schema import load_classes
from data_engine.store.warehouse import open_warehouse
from tests.ingest.test_ingest_corpus import assert_accounted
from tests.homes import make_home

CASES = Path(__file__).resolve().parents[1] / "cases" / "real-world"


class Engine:
    """A fresh home with one of the cases' configs, and an open warehouse."""

    def __init__(self, root: Path, config: str, *, drop: str | None = None) -> None:
        text = (CASES / "configs" / config).read_text(encoding="utf-8")
        if drop:
            text = "".join(ln for ln in text.splitlines(keepends=True) if not ln.startswith(drop))
        self.home = make_home(root, text)
        self._cm = open_warehouse(self.home)
        self.con: duckdb.DuckDBPyConnection = self._cm.__enter__()

    def ingest(self, name: str | Path, **kw: bool) -> IngestResult:
        r = ingest_file(self.con, self.home.config.dataset, CASES / name if isinstance(name, str) else name, **kw)
        if not r.already_known and r.status != "rejected" or r.rows_in:
            assert_accounted(self.con, r)
        return r

    def rows(self, sql: str, *params: object) -> list[tuple]:
        return self.con.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


@pytest.fixture()
def engine(tmp_path: Path):
    made: list[Engine] = []

    def make(config: str, **kw: str) -> Engine:
        made.append(Engine(tmp_path / f"e{len(made)}", config, **kw))
        return made[-1]

    yield make
    for e in made:
        e.close()


def test_unlabeled_stream_first_then_classes_when_labels_arrive(engine) -> None:
    e = engine("text.toml")
    for name in ("10b_first_batch_no_label_col.csv", "10_first_batch_unlabeled_empty_label_col.csv"):
        r = e.ingest(name)
        assert r.status == "ingested" and r.rows_quarantined == 0
    assert e.rows("SELECT count(*), count(label) FROM current_examples") == [(3, 0)]
    assert load_classes(e.con) == []
    labeled = e.home.landing / "labeled.csv"
    labeled.write_text("id,text,label\n7,nice,pos\n8,bad,neg\n", encoding="utf-8")
    assert e.ingest(labeled).rows_labeled == 2
    assert load_classes(e.con) == ["neg", "pos"]


@pytest.mark.parametrize("name, good", [("09_unterminated_quote.csv", 4), ("09b_unterminated_quote_200.csv", 199)])
def test_an_unterminated_quote_costs_its_one_row(engine, name: str, good: int) -> None:
    e = engine("text.toml")
    r = e.ingest(name)
    assert (r.rows_in, r.rows_ok, r.rows_quarantined) == (good + 1, good, 1)
    ((row, reason, raw),) = e.rows("SELECT row_number, reason, raw FROM quarantine")
    assert row == 2 and "unterminated quote" in reason and "line 3" in reason and raw.startswith('2,"')
    if good == 4:  # the quoted comma and the quoted two-line text are stored as written
        assert dict(e.rows("SELECT example_id, text FROM examples")) == {
            "1": "hello, world", "3": "fine", "4": "multi\nline", "5": "last one"}


def test_label_header_in_another_case_is_mapped_and_said(engine) -> None:
    e = engine("text.toml")
    r = e.ingest("08b_label_header_case.csv")
    assert r.rows_labeled == 3 and any("'Label'" in n and "'label'" in n for n in r.notes)
    assert r.ignored_columns == []


def test_missing_value_markers_are_missing_numbers_and_types_are_said(engine) -> None:
    e = engine("tab.toml")
    r = e.ingest("01c_na_markers_8pct.csv")
    assert (r.rows_ok, r.rows_quarantined) == (100, 0)
    assert r.column_types == {"country": "categorical", "amount": "numeric"}
    source = (CASES / "01c_na_markers_8pct.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert sum(",N/A," in ln for ln in source) == 8
    # N/A is a missing amount; the country code NA stays text (only numeric columns read markers).
    assert e.rows("SELECT count(*) FILTER (amount IS NULL), count(*) FILTER (country = 'NA') FROM examples") == [
        (8, sum(ln.split(",")[1] == "NA" for ln in source))]


def test_thousands_separators_are_refused_naming_the_column_and_the_fix(engine) -> None:
    e = engine("tab.toml")
    r = e.ingest("03_thousands_separator.csv")
    assert r.status == "rejected"
    assert "'amount'" in r.reason and "thousands separators" in r.reason and "column_types.amount" in r.reason


def test_float_written_labels_equal_integer_labels(engine) -> None:
    e = engine("tab01.toml")
    assert e.ingest("05a_pandas_float_labels.csv").rows_quarantined == 0
    assert load_classes(e.con) == ["0", "1"]
    r = e.ingest("05c_pandas_int_labels.csv")
    assert (r.rows_ok, r.rows_quarantined) == (10, 0)
    assert e.rows("SELECT DISTINCT label FROM examples ORDER BY 1") == [("0",), ("1",), (None,)]


def test_invisible_characters_make_no_new_class(engine) -> None:
    e = engine("tab_noclasses.toml")
    r = e.ingest("04_label_invisible_chars.csv")
    assert r.rows_quarantined == 0
    # 'Yes' is a visibly different spelling: a class of its own, and the output says so.
    assert load_classes(e.con) == ["Yes", "no", "yes"]
    assert any("differ only in case" in n for n in r.notes)
    # The quarantine of a later file keeps what the file said, while comparing the normalised label.
    later = e.home.landing / "later.csv"
    later.write_text("id,country,amount,label\n90,DE,1,\u200bno\u00a0\n91,DE,1,maybe\t\n", encoding="utf-8")
    r2 = e.ingest(later)
    assert r2.rows_ok == 1
    ((raw,),) = e.rows("SELECT raw FROM quarantine WHERE batch_id = ?", r2.batch_id)
    assert "maybe\\t" in raw


def test_every_landed_file_is_ingested_or_named(engine) -> None:
    e = engine("tab.toml")
    for f in (CASES / "landing-names").iterdir():
        shutil.copy(f, e.home.landing / f.name)
    (e.home.landing / "notes.xlsx").write_bytes(b"PK")
    first = decide_landing(e.home.landing, None, now=time.time() + 60)  # two looks: the files are stable
    decision = decide_landing(e.home.landing, first.cursor, now=time.time() + 120)
    assert len(decision.new_files) == 5 and list(decision.ignored) == ["notes.xlsx"]
    for f in decision.new_files:
        key = f.partition_key
        assert key.isascii() and "..." not in key and "," not in key and key.isprintable()
        r = e.ingest(landed_path(e.home.landing, key))
        assert (r.status, r.rows_ok) == ("ingested", 1)
    assert e.rows("SELECT count(DISTINCT example_id) FROM examples") == [(5,)]
    again = decide_landing(e.home.landing, decision.cursor, now=time.time() + 60)
    assert "notes.xlsx" in again.skip_reason and "not a data file" in again.skip_reason


def test_gold_never_replaces_training_examples(engine) -> None:
    e = engine("tab.toml")
    e.ingest("20_train_ids_from_zero.csv")
    before = e.rows("SELECT example_id, version, amount, label FROM current_examples ORDER BY 1")
    g = e.ingest("20_gold_ids_from_zero.csv", gold=True)
    assert g.rows_ok == 4 and any("4 gold ids equal training ids" in n for n in g.notes)
    assert e.rows("SELECT example_id, version, amount, label FROM current_examples WHERE NOT is_gold ORDER BY 1") == before
    assert e.rows("SELECT example_id FROM examples WHERE is_gold ORDER BY 1") == [
        ("gold:0",), ("gold:1",), ("gold:2",), ("gold:3",)]
    # The training file again, as gold: refused, naming the ids and the way out; --regold stores gold copies.
    r = e.ingest("20_train_ids_from_zero.csv", gold=True)
    assert r.status == "rejected" and "already ingested as training data" in r.reason and "0, 1, 2" in r.reason
    assert "--regold" in r.reason
    again = e.ingest("20_train_ids_from_zero.csv", gold=True, regold=True)
    assert again.status == "ingested" and again.rows_ok == 10
    assert e.rows("SELECT count(*) FROM examples WHERE is_gold") == [(14,)]


def test_gold_rows_copied_from_training_are_counted_and_named_at_ingest(engine, tmp_path: Path) -> None:
    e = engine("tab.toml")
    e.ingest("20_train_ids_from_zero.csv")
    gold = tmp_path / "gold.csv"
    # g1 and g3 repeat the inputs of training rows 0 and 3 (their labels need not agree); g2 and g4 are new.
    gold.write_text("id,country,amount,label\ng1,DE,296.73,no\ng2,FR,1.5,yes\ng3,NA,33.7,no\ng4,DE,2,no\n",
                    encoding="utf-8")
    g = e.ingest(gold, gold=True)
    assert g.rows_ok == 4
    assert [n for n in g.notes if "exact copy" in n] == [
        "2 of 4 gold rows have an exact copy among the training examples (g1, g3): the gate leaves them out of "
        "its gold figures (a model trained on a copy measures memory), as it does near copies it finds"]


def test_a_file_without_an_id_column_gets_content_ids(engine) -> None:
    e = engine("tab.toml", drop="id_column")
    r = e.ingest("21_no_id_column.csv")
    assert (r.status, r.rows_ok) == ("ingested", 10)
    ids = dict(e.rows("SELECT example_id, amount FROM examples"))
    assert len(ids) == 10 and all(i.startswith("c") and len(i) == 17 for i in ids)
    # The same rows in another order (other bytes): the same ids, nothing new; a relabel is a new version.
    lines = (CASES / "21_no_id_column.csv").read_text(encoding="utf-8").splitlines()
    flipped = [lines[0], *reversed(lines[2:]), lines[1].replace(",yes", ",no").replace(",no", ",no")]
    other = e.home.landing / "again.csv"
    other.write_text("\n".join(flipped) + "\n", encoding="utf-8")
    r2 = e.ingest(other)
    assert r2.rows_new == 0 and r2.rows_unchanged + r2.rows_changed == 10
    assert dict(e.rows("SELECT example_id, amount FROM current_examples")) == ids


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_column_names_in_another_case_are_mapped_in_every_format(engine, fmt: str) -> None:
    e = engine("text.toml")
    path = e.home.landing / f"keys.{fmt}"
    if fmt == "jsonl":
        path.write_text('{"ID": "1", " Text ": "fine", "Label": "pos", "extra": 1}\n', encoding="utf-8")
    else:
        e.con.execute(f"COPY (SELECT '1' AS \"ID\", 'fine' AS \" Text \", 'pos' AS \"Label\", 1 AS extra) "
                      f"TO '{path}' (FORMAT parquet)")
    r = e.ingest(path)
    assert (r.status, r.rows_labeled, r.ignored_columns) == ("ingested", 1, ["extra"])
    assert sorted(n for n in r.notes if n.startswith("column")) == ["column ' Text ' read as 'text' (the config's name)",
                                   "column 'ID' read as 'id' (the config's name)",
                                   "column 'Label' read as 'label' (the config's name)"]


def test_classes_wait_for_two_labels(engine) -> None:
    e = engine("text.toml")
    first = e.home.landing / "one.csv"
    first.write_text("id,text,label\n1,good,pos\n2,fine,pos\n", encoding="utf-8")
    assert e.ingest(first).rows_labeled == 2 and load_classes(e.con) == []
    second = e.home.landing / "two.csv"
    second.write_text("id,text,label\n3,bad,neg\n", encoding="utf-8")
    r = e.ingest(second)
    assert r.rows_quarantined == 0 and load_classes(e.con) == ["neg", "pos"]


def test_a_missing_value_marker_as_label_is_an_unlabeled_row_and_said(engine) -> None:
    """R writes an unknown label as NA and pandas as NaN: such rows are unlabeled, never a class "NA"."""
    e = engine("text.toml")
    f = e.home.landing / "r_export.csv"
    f.write_text('id,text,label\n1,nice,pos\n2,bad,neg\n3,meh,NA\n4,so so,"NaN"\n5,fine,pos\n', encoding="utf-8")
    r = e.ingest(f)
    assert (r.rows_ok, r.rows_quarantined, r.rows_labeled) == (5, 0, 3)
    assert load_classes(e.con) == ["neg", "pos"]
    assert dict(e.rows("SELECT example_id, label FROM current_examples")) == {
        "1": "pos", "2": "neg", "3": None, "4": None, "5": "pos"}
    assert any("2 rows" in n and "'NA'" in n and "'NaN'" in n and "unlabeled" in n for n in r.notes), r.notes


def test_a_marker_that_is_a_configured_class_stays_a_label(engine) -> None:
    e = engine("text.toml")
    e.con.execute("DELETE FROM dataset_classes")
    e.con.execute("INSERT INTO dataset_classes VALUES ('NA', 0, 'config'), ('EU', 1, 'config')")
    f = e.home.landing / "regions.csv"
    f.write_text("id,text,label\n1,us,NA\n2,fr,EU\n3,?,?\n", encoding="utf-8")
    r = e.ingest(f)
    assert dict(e.rows("SELECT example_id, label FROM current_examples")) == {"1": "NA", "2": "EU", "3": None}
    assert any("'?'" in n for n in r.notes) and not any("'NA'" in n for n in r.notes)


def test_an_empty_header_cell_is_named_by_its_position(engine) -> None:
    """DuckDB calls an unnamed column column<i>, a name the file never says; a real column2 keeps its name."""
    e = engine("text.toml")
    f = e.home.landing / "unnamed.csv"
    f.write_text("id,text,,label,column7\n1,hello,x,pos,a\n2,bad,y,neg,b\n", encoding="utf-8")
    r = e.ingest(f)
    assert r.ignored_columns == ["(no name, column 3)", "column7"] and r.rows_labeled == 2


def test_a_reexport_by_other_tools_stores_nothing_new(engine) -> None:
    """Issue 26: the same 40 events as pandas writes them (True, +00:00, ['card', 'web']), as another
    tool's JSON Lines (true, Z, JSON arrays, amounts as '65.30') and as Parquet (BOOLEAN, TIMESTAMPTZ, LIST)."""
    e = engine("events.toml")
    assert e.ingest("26_events_pandas.csv").rows_new == 40
    for name in ("26_events_reexport.jsonl", "26_events.parquet"):
        r = e.ingest(name)
        assert (name, r.rows_ok, r.rows_new, r.rows_changed, r.rows_unchanged) == (name, 40, 0, 0, 40)
    assert e.rows("SELECT count(*) FROM examples") == [(40,)]


def test_a_class_that_arrives_later_is_added_and_its_rows_readmitted(engine) -> None:
    from data_engine.ingest.classes import add_classes

    e = engine("events.toml")
    e.ingest("26_events_pandas.csv")
    assert load_classes(e.con) == ["fraud", "ok"]
    r = e.ingest("26_events_new_class.csv")
    assert (r.rows_ok, r.rows_quarantined, r.unknown_labels) == (3, 3, {"chargeback": 3})
    assert any("`data-engine classes add chargeback`" in w for w in r.warnings)
    change = add_classes(e.con, e.home.config.dataset, ["chargeback"])
    assert (change.rows_readmitted, change.classes) == (3, ["fraud", "ok", "chargeback"])
    assert e.rows("SELECT count(*) FROM current_labels WHERE label = 'chargeback'") == [(3,)]
    assert_accounted(e.con, change.batches[0])


def test_a_class_renamed_upstream_is_renamed_and_its_labels_follow(engine) -> None:
    from data_engine.ingest.classes import rename_class

    e = engine("events.toml")
    e.ingest("26_events_pandas.csv")
    fraud = e.rows("SELECT count(*) FROM current_labels WHERE label = 'fraud'")[0][0]
    r = e.ingest("26_events_renamed.csv")
    assert r.unknown_labels == {"fraudulent": 2}
    change = rename_class(e.con, e.home.config.dataset, "fraud", "fraudulent")
    assert (change.labels_renamed, change.rows_readmitted) == (fraud, 2)
    assert e.rows("SELECT count(*) FILTER (label = 'fraudulent'), count(*) FILTER (label = 'fraud') "
                  "FROM current_labels") == [(fraud + 2, 0)]
    # The ledger keeps the old label events: only new ones were appended.
    assert e.rows("SELECT count(*) FROM label_events WHERE label = 'fraud'") == [(fraud,)]


def test_a_spreadsheets_yes_no_reexport_is_unchanged(engine) -> None:
    """Issue 26: the same 40 events with the booleans written Yes/No (rows reversed) store nothing new."""
    e = engine("events.toml")
    assert e.ingest("26_events_pandas.csv").rows_new == 40
    r = e.ingest("26_events_yesno.csv")
    assert (r.rows_ok, r.rows_new, r.rows_changed, r.rows_unchanged) == (40, 0, 0, 40)


def test_a_class_arriving_under_several_spellings_is_added_once(engine) -> None:
    """Issue 26: `chargeback` arrives in a later batch also spelled `Chargeback` and `CHARGEBACK `: one
    class is advised and added; the other spellings wait in the quarantine, named."""
    from data_engine.ingest.classes import add_classes

    e = engine("events.toml")
    e.ingest("26_events_pandas.csv")
    r = e.ingest("26_events_class_spellings.csv")
    assert r.unknown_labels == {"chargeback": 3, "CHARGEBACK": 1, "Chargeback": 1}
    said = next(w for w in r.warnings if "not one of the classes" in w)
    assert "`data-engine classes add chargeback`" in said and "'Chargeback' differs from 'chargeback'" in said
    change = add_classes(e.con, e.home.config.dataset, ["chargeback"])
    assert change.rows_readmitted == 3 and set(change.spellings_waiting) == {"CHARGEBACK", "Chargeback"}
    assert load_classes(e.con) == ["fraud", "ok", "chargeback"]


def test_landing_folder_text_files_as_tools_write_them(engine) -> None:
    """Issue 26: CR-only line endings (Excel for Mac), JSONL keys spelled four ways, and a value holding
    escaped NUL characters: every row read or quarantined with its column, nothing lost."""
    e = engine("text.toml")
    cr = e.ingest("26_reviews_cr_only.csv")
    assert (cr.rows_ok, cr.rows_quarantined) == (5, 0)
    assert e.rows("SELECT text FROM examples WHERE example_id IN ('m1', 'm5') ORDER BY example_id") == [
        ("Loved it, would buy again",), ('"Best" purchase this year',)]
    keys = e.ingest("26_reviews_keys.jsonl")
    assert (keys.rows_ok, keys.rows_labeled, keys.rows_quarantined) == (5, 5, 0)
    assert sum("differ only in case or surrounding spaces" in n for n in keys.notes) == 3, keys.notes
    nul = e.ingest("26_reviews_escaped_nul.jsonl")
    assert (nul.rows_ok, nul.rows_quarantined) == (2, 3)
    reasons = e.rows("SELECT row_number, reason FROM quarantine WHERE batch_id = ? ORDER BY row_number", nul.batch_id)
    assert reasons[0] == (
        2, "column text: a NUL character (U+0000) at character 10, which no text holds (remove it from the value)")
    assert reasons[1][0] == 4 and "column label: a NUL character (U+0000) at character 3" in reasons[1][1], reasons
    assert reasons[2][0] == 5 and "is not one of the classes" in reasons[2][1], reasons
    # A label with a NUL or another control character (BEL, row 5) is no class to add (a trial was
    # advised `classes add` for a NUL one, and it added a name no file holds); the command refuses both.
    assert nul.unknown_labels == {} and not any("classes add" in w for w in nul.warnings), nul.warnings
    from data_engine.ingest.classes import add_classes

    with pytest.raises(EngineError, match="control character at character 3"):
        add_classes(e.con, e.home.config.dataset, ["po\x00s"])
    with pytest.raises(EngineError, match="control character at character 3"):
        add_classes(e.con, e.home.config.dataset, ["ne\x07g"])
