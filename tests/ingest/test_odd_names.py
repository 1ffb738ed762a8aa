"""A gzip-compressed CSV is read as gzip whatever its name holds (DuckDB cut ``?.csv.gz`` at the
``?`` as if the name were a URL with a query, and read the compressed bytes as text)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from data_engine.ingest.batch import ingest_file
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

CONFIG = """\
[dataset]
name = "odd"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["country", "amount"]
classes = ["yes", "no"]
column_types = { country = "categorical", amount = "numeric" }
"""
DATA = b"id,country,amount,label\n0,DE,1.5,yes\n1,FR,,no\n2,DE,3,\n"


@pytest.mark.parametrize("name", ["?.csv.gz", "a?b.csv.gz", "#1 & [x].csv.gz", "?.csv"])
def test_a_name_with_url_or_glob_characters_is_read_by_its_suffix(tmp_path: Path, name: str) -> None:
    home = make_home(tmp_path, CONFIG)
    path = home.landing / name
    path.write_bytes(gzip.compress(DATA) if name.endswith(".gz") else DATA)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, path)
        assert (result.status, result.rows_ok, result.rows_labeled) == ("ingested", 3, 2), result.reason
        amounts = con.execute("SELECT amount FROM current_examples ORDER BY example_id").fetchall()
    assert [a[0] for a in amounts] == [1.5, None, 3.0]
