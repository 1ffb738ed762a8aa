"""Issue 26, the landing folder: a symbolic link to a secret, a file still being written, line
endings of every kind, NUL bytes at any offset and JSON keys spelled in another case, each landed
as a real file and taken the way the docs (docs/ingest.md, "The landing folder") say."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from assets.ingest import ingest_metadata
from data_engine.errors import EngineError
from data_engine.ingest import batch as batch_module
from data_engine.ingest.batch import ingest_file
from data_engine.ingest.checked import read_checked
from data_engine.ingest.landing import SETTLE_SECONDS, decide_landing, landed_path
from data_engine.ingest.readers import _explain
from data_engine.ingest.redact import MASK, preview, redact_text
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

ROOT = Path(__file__).resolve().parents[2]
TEXT_CONFIG = """[dataset]
name = "s"
modality = "text"
id_column = "id"
label_column = "label"
text_column = "text"
classes = ["pos", "neg"]
"""
# The shape of a Label Studio legacy token (40 hex digits); made up.
TOKEN = "7c4a8d09ca3762af61e59520943dc26494f8941b"


def _old(path: Path) -> None:
    """Give ``path`` a modification time a minute ago (settled)."""
    t = time.time() - 60
    os.utime(path, (t, t), follow_symlinks=False)


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATA_ENGINE_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "data_engine.cli", "--home", str(home), *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_a_link_to_a_token_file_is_refused_unread_and_no_reason_quotes_a_secret(tmp_path: Path) -> None:
    home = make_home(tmp_path, TEXT_CONFIG)
    secret = tmp_path / "secrets" / "label_studio_token"
    secret.parent.mkdir()
    secret.write_text(TOKEN + "\n")
    link = home.landing / "token.csv"
    link.symlink_to(secret)
    folder_link = home.landing / "more"
    folder_link.symlink_to(secret.parent, target_is_directory=True)
    # The same token in a file landed for real: read, rejected, and its reason masked.
    copied = home.landing / "copied.csv"
    copied.write_text(TOKEN + "\n")
    for p in (secret, copied):
        _old(p)
    t = time.time()
    first = decide_landing(home.landing, None, now=t)
    decision = decide_landing(home.landing, first.cursor, now=t + SETTLE_SECONDS + 1)
    assert [f.relpath for f in decision.new_files] == ["copied.csv"]
    assert "leading out of the landing folder; not followed, nothing read" in decision.ignored["token.csv"]
    assert "symbolic link to a folder; not followed" in decision.ignored["more"]
    assert landed_path(home.landing, "token.csv") is None

    refused = _cli(home.root, "ingest", str(link))
    assert refused.returncode == 2 and "not followed" in refused.stderr and TOKEN not in refused.stderr
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, copied)
        assert result.status == "rejected" and MASK in result.reason
        stored = json.dumps(con.execute("SELECT * FROM batches").fetchall(), default=str)
    assert TOKEN not in stored and TOKEN not in json.dumps(result.to_dict())
    assert TOKEN not in json.dumps({k: str(v) for k, v in ingest_metadata(result).items()})
    status = _cli(home.root, "status")
    assert status.returncode == 0 and "token.csv - a symbolic link" in status.stdout
    assert "copied" in status.stdout and TOKEN not in status.stdout + status.stderr


def test_secret_looking_text_is_masked_and_ordinary_text_kept() -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjoxfQ.dGhpcyBpcyBub3QgYSByZWFsIHNpZw"
    assert redact_text(f"the file has: '{TOKEN}'") == f"the file has: '{MASK}'"
    assert TOKEN not in redact_text(f"Token {TOKEN}") and jwt[:20] not in redact_text(f"x {jwt} y")
    assert redact_text("api_key=sk_live_abc123") == f"api_key={MASK}"
    kept = ("batch Report_Q1_2024_copy-1a2b3c4d5e6f (landing/Report, Q1 2024.csv); column 'tenure_months': "
            "56 months is not a finite number; internationalisation")
    assert redact_text(kept) == kept
    assert preview("x" * 100) == "x" * 40 + "..." and preview("a\x00b") == "a\\x00b"
    # File paths stay readable (a trial read 'row 3: image: [redacted].png'); a key inside one is still masked,
    # and a base64 key with '/' that is no path (no leading '/', no file extension after it) too.
    paths = ("row 3: image: /tmp/trial22/det/data/img/missing.png: no such image file; "
             "same bytes as batch bad2-06b58664c942 (data/run2024/batch22/bad2.jsonl)")
    assert redact_text(paths) == paths
    assert redact_text(f"/data/{TOKEN}/f.png") == f"/data/{MASK}/f.png"
    assert redact_text("k Zm9vYmFyYmF6cXV4MTIzNDU2/abc. end") == f"k {MASK}. end"


def test_a_file_that_changes_between_looks_or_while_read_is_not_taken(tmp_path: Path, monkeypatch) -> None:
    home = make_home(tmp_path, TEXT_CONFIG)
    growing = home.landing / "growing.csv"
    growing.write_text("id,text,label\n1,a whole sentence,pos\n2,half a sent")
    _old(growing)  # an old time does not make it complete: the writer only paused
    (home.landing / "upload.csv.part").write_text("id,text,label\n")
    t = time.time()
    first = decide_landing(home.landing, None, now=t)
    assert first.new_files == [] and "not yet stable" in first.skip_reason
    assert "read once it is renamed" in first.ignored["upload.csv.part"]
    with growing.open("a") as fh:
        fh.write("ence,neg\n")
    _old(growing)
    grown = decide_landing(home.landing, first.cursor, now=t + SETTLE_SECONDS + 1)
    assert grown.new_files == [], "changed since the last look: looked at again, not requested"
    done = decide_landing(home.landing, grown.cursor, now=t + 2 * SETTLE_SECONDS + 2)
    assert [f.relpath for f in done.new_files] == ["growing.csv"]

    # A writer that appends while the engine reads: nothing of the partial bytes is stored.
    real_read = batch_module.read_raw

    def read_then_append(con, path, fmt, ds=None):
        out = real_read(con, path, fmt, ds)
        with path.open("a") as fh:
            fh.write("3,more,pos\n")
        return out

    monkeypatch.setattr(batch_module, "read_raw", read_then_append)
    with open_warehouse(home) as con:
        with pytest.raises(EngineError, match="changed while it was read"):
            ingest_file(con, home.config.dataset, growing)
        assert con.execute("SELECT count(*) FROM batches").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM examples").fetchone()[0] == 0


ROWS = [("1", "hello, world", "pos"), ("2", "awful", "neg"), ("3", "fine", "pos")]


@pytest.mark.parametrize("endings", [["\n"] * 4, ["\r\n"] * 4, ["\r"] * 4, ["\r\n", "\n", "\r\n", "\n"],
                                     ["\n", "\r", "\r\n", "\n"]])
def test_any_line_ending_is_read(tmp_path: Path, endings: list[str]) -> None:
    home = make_home(tmp_path, TEXT_CONFIG)
    lines = ["id,text,label"] + [f'{i},"{t}",{lab}' for i, t, lab in ROWS]
    path = home.landing / "ends.csv"
    path.write_bytes("".join(ln + end for ln, end in zip(lines, endings)).encode())
    with open_warehouse(home) as con:
        r = ingest_file(con, home.config.dataset, path)
        stored = con.execute("SELECT example_id, text, label FROM examples ORDER BY example_id").fetchall()
    assert (r.status, r.rows_ok, r.rows_quarantined) == ("ingested", 3, 0), r.reason
    assert stored == ROWS
    assert any("mixed line endings" in n for n in r.notes) == (len(set(endings)) > 1)


def test_a_duckdb_error_is_never_cut_at_a_heading() -> None:
    exc = Exception("Invalid Input Error: Error when sniffing file \"x.csv\".\nIt was not possible\n"
                    "Possible fixes:\n* Disable the parser's strict mode (strict_mode=false)")
    assert _explain(exc) == 'Error when sniffing file "x.csv".'


@pytest.mark.parametrize("offset", [5, 70 * 1024, 5 * 1024 * 1024])
@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_nul_byte_refuses_the_file_wherever_it_is(tmp_path: Path, offset: int, suffix: str) -> None:
    home = make_home(tmp_path, TEXT_CONFIG)
    line = ('{"id": "%d", "text": "some words here", "label": "pos"}\n' if suffix == ".jsonl"
            else "%d,some words here,pos\n")
    # Lines are gathered and joined once: growing one bytes object line by line copies it every time
    # (minutes at 5 MiB).
    parts, i = [("" if suffix == ".jsonl" else "id,text,label\n").encode()], 0
    size = len(parts[0])
    while size < offset + 200:
        i += 1
        parts.append((line % i).encode())
        size += len(parts[-1])
    body = b"".join(parts)
    body = body[:offset] + b"\x00" + body[offset + 1:]
    expected_line = body[:offset].count(b"\n") + 1
    path = home.landing / f"nul{suffix}"
    path.write_bytes(body)
    with open_warehouse(home) as con:
        r = ingest_file(con, home.config.dataset, path)
    assert r.status == "rejected" and r.rows_ok == 0
    assert f"a NUL byte on line {expected_line} (byte {offset})" in r.reason
    with pytest.raises(EngineError, match=f"NUL byte on line {expected_line} "):  # predict reads files the same way
        read_checked(path, home.config.dataset, {"text": "text"}, ["pos", "neg"], need_label=False)


def test_json_keys_that_differ_in_case_are_one_column_and_said(tmp_path: Path) -> None:
    home = make_home(tmp_path, TEXT_CONFIG)
    rows = [{"id": "1", "text": "good", "label": "pos"}, {"id": "2", "text": "bad", "Label": "neg"},
            {"id": "3", "text": "fine", " label ": "pos"}, {"id": "4", "text": "meh", "label": "neg"},
            {"id": "5", "text": "two", "label": "pos", "LABEL": "neg"}]
    path = home.landing / "keys.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open_warehouse(home) as con:
        r = ingest_file(con, home.config.dataset, path)
        stored = con.execute("SELECT example_id, label FROM examples ORDER BY example_id").fetchall()
        (reason,) = con.execute("SELECT reason FROM quarantine WHERE row_number = 5").fetchone()
    assert (r.rows_ok, r.rows_labeled, r.rows_quarantined) == (4, 4, 1)
    assert stored == [("1", "pos"), ("2", "neg"), ("3", "pos"), ("4", "neg")]
    assert any("'label' (2 rows), 'Label' (1 row), ' label ' (1 row) differ only in case" in n for n in r.notes), r.notes
    assert "key \"label\" appears twice in one object" in reason


def test_a_nul_character_inside_a_value_quarantines_its_row_naming_the_column(tmp_path: Path) -> None:
    """A well-formed file whose value holds U+0000 (JSON's \\u0000 escape, a Parquet string): the file
    is readable, so the row (not the file) is refused, naming the column, at ingest and at predict."""
    import pandas as pd

    home = make_home(tmp_path, TEXT_CONFIG.replace('text_column = "text"', 'text_column = "text"\n'
                                                   'feature_columns = ["source"]'))
    rows = [{"id": "1", "text": "fine words", "source": "web", "label": "pos"},
            {"id": "2", "text": "bad\u0000words", "source": "web", "label": "neg"},
            {"id": "3", "text": "more words", "source": "a\u0000pp", "label": "pos"},
            {"id": "4\u0000", "text": "other words", "source": "web", "label": "neg"}]
    jsonl = home.landing / "escaped.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert "\\u0000" in jsonl.read_text()
    parquet = home.landing / "strings.parquet"
    pd.DataFrame([{**r, "id": f"p{r['id']}"} for r in rows]).to_parquet(parquet)
    with open_warehouse(home) as con:
        for path, at in ((jsonl, 2), (parquet, 3)):   # the Parquet file's ids are "p1" ... "p4\x00"
            r = ingest_file(con, home.config.dataset, path)
            assert (r.status, r.rows_ok, r.rows_quarantined) == ("ingested", 1, 3), r.reason
            reasons = [x for (x,) in con.execute("SELECT reason FROM quarantine WHERE batch_id = ? ORDER BY row_number",
                                                 [r.batch_id]).fetchall()]
            assert reasons == ["column text: a NUL character (U+0000) at character 4, which no text holds "
                               "(remove it from the value)",
                               "column source: a NUL character (U+0000) at character 2, which no text holds "
                               "(remove it from the value)",
                               f"column id: a NUL character (U+0000) at character {at}, which no text holds "
                               "(remove it from the value)"]
        assert con.execute("SELECT count(*) FROM examples WHERE contains(text, chr(0)) OR contains(source, chr(0)) "
                           "OR contains(example_id, chr(0))").fetchone()[0] == 0
    checked = read_checked(jsonl, home.config.dataset, {"text": "text", "source": "categorical"}, ["pos", "neg"],
                           need_label=False)
    assert list(checked.frame["example_id"]) == ["1"]
