"""A landed file is read by its suffix whatever else its name holds: characters a URL or a glob gives
a meaning to (``?``, ``#``, ``%``, ``*``, ``[]``, ``{}``) are part of the name. DuckDB cut ``?.csv.gz``
at the ``?`` as if the name were a URL with a query and read the compressed bytes as text; every
format the engine reads is tried."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.ingest.readers import FORMATS
from data_engine.store.warehouse import open_warehouse
from tests.conftest import TOY_CONFIG
from tests.homes import make_home

ROWS = [{"id": "1", "x": "1.5", "color": "red", "label": "a"},
        {"id": "2", "x": "", "color": "blue", "label": "b"},
        {"id": "3", "x": "3", "color": "red", "label": ""}]


def _write(path: Path, suffix: str) -> None:
    """``ROWS`` in the format ``suffix`` names in :data:`FORMATS` (gzip-compressed for ``.gz``)."""
    kind = FORMATS[suffix]
    if kind == "parquet":
        pd.DataFrame(ROWS).to_parquet(path, index=False)
        return
    if kind == "json":
        data = json.dumps(ROWS)
    elif kind == "jsonl":
        data = "".join(json.dumps(r) + "\n" for r in ROWS)
    else:
        sep = "\t" if suffix.startswith(".tsv") else ","
        data = "".join(sep.join(r) + "\n" for r in [list(ROWS[0]), *[list(r.values()) for r in ROWS]])
    path.write_bytes(gzip.compress(data.encode()) if suffix.endswith(".gz") else data.encode())


# CoNLL token files hold tokens and tags, not these rows: tests/ingest/test_ner_ingest.py reads one by an odd name.
@pytest.mark.parametrize("suffix", sorted(s for s in FORMATS if FORMATS[s] != "conll"))
@pytest.mark.parametrize("stem", ["?", "a?b #1 %20", "*[x]{1,2}"])
def test_a_name_with_url_or_glob_characters_is_read_by_its_suffix(tmp_path: Path, stem: str, suffix: str) -> None:
    home = make_home(tmp_path, TOY_CONFIG)
    path = home.landing / f"{stem}{suffix}"
    _write(path, suffix)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        assert (result.status, result.rows_ok, result.rows_labeled) == ("ingested", 3, 2), result.reason
        values = con.execute("SELECT x, color FROM current_examples ORDER BY example_id").fetchall()
    assert values == [(1.5, "red"), (None, "blue"), (3.0, "red")]
