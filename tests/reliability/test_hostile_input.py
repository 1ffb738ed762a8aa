"""Hostile and malformed input, generated with hypothesis, against the ingest validators, the config
loader, the Label Studio annotation parser and the ``/predict`` endpoint.

Each input must give a clear error (an EngineError / ConfigError / 422 naming the field) or a
quarantined row: never another exception, a 500, or an injected query (the tables are checked
intact after every file, and hostile ids are stored verbatim when valid).
"""

from __future__ import annotations

import csv
import io
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_engine.errors import ConfigError, EngineError
from data_engine.ingest.batch import ingest_file
from data_engine.store.config import parse_config
from data_engine.store.home import Home
from data_engine.store.values import normalize_text
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

TOY = """\
[dataset]
name = "toy"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "color", "note"]
classes = ["a", "b"]
column_types = { x = "numeric", color = "categorical", note = "categorical" }
"""
CHOICES = ["0", "1", "not a valid example"]
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

HOSTILE = [
    "'; DROP TABLE examples;--", "\"; DELETE FROM label_events; --", "../../etc/passwd", "..\\..\\boot.ini",
    "<script>alert(1)</script>", "a\x00b", "$(rm -rf /)", "%s%s%n", "{{7*7}}", "\u202eevil", "NULL", "null",
    " ", "", "1e309", "NaN", "-inf", "\ufeffbom", "x" * 5000, "é" * 300, "🙂" * 100, "a,b", "line\nbreak", "q\"uote",
]
hostile_text = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40),
                         st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=3000))
number_text = st.one_of(st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e400", "0x10", "1,5", "", " 3 "]),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers().map(str),
                        hostile_text)
row = st.fixed_dictionaries({"id": hostile_text, "label": st.one_of(st.sampled_from(["a", "b"]), hostile_text),
                             "x": number_text, "color": hostile_text, "note": hostile_text})


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Home:
    root = tmp_path_factory.mktemp("hostile")
    return make_home(root, TOY)


def _tables(con) -> dict[str, int]:
    names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"batches", "examples", "label_events", "quarantine", "schema_migrations"} <= names
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("examples", "label_events")}


def _as_csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["id", "label", "x", "color", "note"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def _as_jsonl(rows: list[dict[str, str]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


FILES = {"n": 0}


# slow: sixty fuzzed files, each ingested; tests/ingest/test_ingest_corpus.py's bad files stay fast
@pytest.mark.slow
@SETTINGS
@given(rows=st.lists(row, min_size=1, max_size=8), fmt=st.sampled_from(["csv", "jsonl"]),
       encoding=st.sampled_from(["utf-8", "utf-8", "utf-8", "latin-1", "utf-16", "cp1252"]))
def test_ingest_hostile_rows_are_stored_or_quarantined_never_a_crash(toy: Home, rows, fmt, encoding) -> None:
    text = _as_csv(rows) if fmt == "csv" else _as_jsonl(rows)
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8", "surrogatepass") if encoding == "utf-8" else text.encode(encoding, "replace")
    FILES["n"] += 1
    path = toy.landing / f"h{FILES['n']}.{fmt}"
    path.write_bytes(data)
    with open_warehouse(toy) as con:
        before = _tables(con)
        try:
            result = ingest_file(con, toy.config.dataset, path)
        except EngineError as exc:  # a clear, one-line error is allowed; anything else fails the test
            assert str(exc) and "\n" not in str(exc)
            assert _tables(con) == before
            return
        after = _tables(con)
        if result.status == "ingested":
            assert result.rows_in == result.rows_ok + result.rows_quarantined
            in_q = con.execute("SELECT count(*) FROM quarantine WHERE batch_id = ?", [result.batch_id]).fetchone()[0]
            assert in_q == result.rows_quarantined
            assert after["examples"] - before["examples"] == result.rows_new + result.rows_changed
            # Stored ids are the file's ids in the engine's one spelling (NFC, no whitespace of any kind
            # at the ends: data_engine.store.values), metacharacters and all.
            stored = {r[0] for r in con.execute("SELECT example_id FROM examples WHERE batch_id = ?",
                                                [result.batch_id]).fetchall()}
            assert stored <= {normalize_text(r["id"]) for r in rows}
        else:
            assert result.status in ("rejected", "duplicate") and result.reason, result
            assert after == before


@SETTINGS
@given(body=st.binary(min_size=1, max_size=2000), suffix=st.sampled_from(["csv", "jsonl", "parquet", "tsv"]))
def test_ingest_random_bytes_are_rejected_or_read_never_a_crash(toy: Home, body: bytes, suffix: str) -> None:
    FILES["n"] += 1
    path = toy.landing / f"b{FILES['n']}.{suffix}"
    path.write_bytes(body)
    with open_warehouse(toy) as con:
        before = _tables(con)
        try:
            result = ingest_file(con, toy.config.dataset, path)
        except EngineError as exc:
            assert "\n" not in str(exc)
            return
        assert result.status in ("ingested", "rejected", "duplicate")
        if result.status != "ingested":
            assert result.reason and _tables(con) == before


# ---- the config loader ---------------------------------------------------------------------

toml_scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30),
                        st.sampled_from(["tabular", "text", "image", "numeric", "categorical", "accuracy",
                                         "vector", "e5-small", "column", "external"]))
toml_value = st.recursive(toml_scalar, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                             st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                          max_leaves=12)
KEYS = {
    "dataset": ["name", "modality", "id_column", "label_column", "feature_columns", "text_column", "classes",
                "column_types", "typo"],
    "mining": ["model", "folds", "seed", "n_jobs", "detectors", "embedding", "predictions"],
    "review": ["url", "api_key_env", "project_title", "budget", "annotators_per_task", "import_batch_size",
               "timeout_seconds", "weights", "allow_remote"],
    "retrain": ["min_new_labels", "weight_by_label_quality"],
    "gate": ["metric", "tolerance", "min_gold", "slices", "test", "alpha", "min_class_recall", "min_class_gold",
             "unmeasured", "unmeasured_tolerance"],
    "serve": ["port"],
}
GOOD = {"name": "d", "modality": "tabular", "id_column": "id", "label_column": "y", "feature_columns": ["a", "b"]}


@st.composite
def configs(draw):
    raw = {"dataset": dict(GOOD)}
    for section in draw(st.lists(st.sampled_from(sorted(KEYS)), max_size=4)):
        table = raw.setdefault(section, {})
        for key in draw(st.lists(st.sampled_from(KEYS[section]), min_size=1, max_size=3)):
            table[key] = draw(toml_value)
    if draw(st.booleans()):
        raw[draw(st.text(max_size=8))] = draw(toml_value)
    if draw(st.booleans()):
        raw["dataset"] = draw(toml_value)
    return raw


@settings(max_examples=300, deadline=None, derandomize=True)
@given(raw=configs())
def test_config_loader_gives_a_config_or_a_config_error_naming_the_key(raw) -> None:
    try:
        cfg = parse_config(raw)
    except ConfigError as exc:
        message = str(exc)
        assert message and "\n" not in message
        return
    # id_column may be left out (ids then derive from the row's content), never given empty.
    assert cfg.dataset.id_column != "" and cfg.mining.folds >= 2 and 1 <= cfg.serve.port <= 65535


@settings(max_examples=60, deadline=None, derandomize=True)
@given(text=st.text(max_size=300))
def test_config_files_of_random_text_are_a_config_error(tmp_path_factory, text: str) -> None:
    from data_engine.store.config import load_config

    path = tmp_path_factory.mktemp("cfg") / "engine.toml"
    path.write_text("[dataset]\n" + text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path)
    except ConfigError as exc:
        assert str(exc).startswith(str(path))


# ---- the Label Studio annotation parser -------------------------------------------------------

json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                          lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                  st.dictionaries(st.text(max_size=10), inner, max_size=4)),
                          max_leaves=20)
region = st.one_of(json_value, st.fixed_dictionaries({
    "from_name": st.sampled_from(["verdict", "other", None]), "type": st.sampled_from(["choices", "labels", 3]),
    "value": st.one_of(json_value, st.fixed_dictionaries({"choices": st.one_of(json_value, st.lists(
        st.sampled_from(["0", "1", "not a valid example", "<script>", "'; DROP TABLE label_events;--", "7"]), max_size=3))}))}))
annotation = st.one_of(json_value, st.fixed_dictionaries({
    "id": st.one_of(st.integers(min_value=1, max_value=10**6), json_value),
    "completed_by": st.one_of(st.none(), st.integers(min_value=1, max_value=5), json_value),
    "result": st.one_of(st.lists(region, max_size=3), json_value),
    "was_cancelled": st.one_of(st.booleans(), json_value),
    "lead_time": st.one_of(st.none(), st.floats(), json_value),
    "updated_at": st.one_of(st.sampled_from(["2026-01-01T00:00:00.000000Z", "2026-13-45", ""]), json_value),
}))


def _deep(depth: int) -> dict:
    value: object = "0"
    for _ in range(depth):
        value = {"value": {"choices": [value]}}
    return value  # type: ignore[return-value]


@settings(max_examples=300, deadline=None, derandomize=True)
@given(anns=st.one_of(st.lists(annotation, max_size=4), json_value))
def test_annotation_parser_skips_and_names_malformed_answers(anns) -> None:
    from data_engine.review.consensus import _answers

    task = {"id": 1, "data": {}, "updated_at": "2026-01-01T00:00:00Z", "annotations": anns}
    problems: list[str] = []
    answers = _answers(task, {1: "reviewer@example.com"}, CHOICES, problems)
    for a in answers:
        assert a.choice in CHOICES and isinstance(a.annotation_id, int) and a.updated_at
        assert a.lead_time is None or math.isfinite(a.lead_time)
    n = len(anns) if isinstance(anns, list) else 0
    assert len(answers) <= n
    assert all(p.startswith("task 1: ") and "\n" not in p for p in problems)
    if anns is not None and not isinstance(anns, list):
        assert problems  # a non-list is named, not ignored


def test_annotation_parser_survives_deep_nesting() -> None:
    from data_engine.review.consensus import _answers

    deep = {"id": 7, "completed_by": 1, "was_cancelled": False, "lead_time": 1.0, "updated_at": "2026-01-01T00:00:00Z",
            "result": [{"from_name": "verdict", "type": "choices", "value": {"choices": [_deep(5000)]}}]}
    task = {"id": 1, "data": {}, "updated_at": "2026-01-01T00:00:00Z", "annotations": [deep]}
    problems: list[str] = []
    # Nested objects are no choice: the annotation counts as a skip and is reported (issue 11), in one line.
    assert _answers(task, {}, CHOICES, problems) == []
    assert len(problems) == 1 and "empty result" in problems[0] and "\n" not in problems[0]


def test_a_pull_skips_malformed_or_foreign_answers_names_them_and_keeps_the_rest(tmp_path) -> None:
    from data_engine.review.labelstudio.fake import FakeReviewClient
    from data_engine.review.labelstudio.labeling import choice_result
    from data_engine.review.pull import pull_verdicts
    from data_engine.review.push import push_queue
    from tests.review_support import digits_home, make_queue

    home, frame = digits_home(tmp_path / "home", n=6)
    make_queue(home, frame)
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        push_queue(con, client, home.config)
    tasks = {t["data"]["example_id"]: t["id"] for t in client.tasks.values()}
    ids = list(frame["id"])
    hostile = ["<script>alert(1)</script>", "'; DROP TABLE label_events;--", "../../etc/passwd"]
    for ex, label in zip(ids[:3], hostile, strict=True):
        client.create_annotation(tasks[ex], choice_result(label))
    aid = client.create_annotation(tasks[ids[3]], choice_result("1"))
    client.annotations[aid]["updated_at"] = "not a time"
    good = dict(zip(ids[4:], frame["true_label"][4:], strict=True))
    for ex, label in good.items():
        client.create_annotation(tasks[ex], choice_result(label))
    with open_warehouse(home) as con:
        result = pull_verdicts(con, client, home.config)
        events = dict(con.execute("SELECT example_id, label FROM label_events WHERE source = 'review'").fetchall())
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert events == good and "label_events" in tables
    assert len(result.problems) == 4
    assert all("skipped" in p for p in result.problems)
    assert any("is not one of the classes" in p and "script" in p for p in result.problems)
    assert any("updated_at is not a time" in p for p in result.problems)
