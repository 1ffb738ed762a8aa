"""A categorical value spelt in two ways that differ only in letter case or surrounding spaces
("True" / "true", "Paris" / "paris ") is two categories to the models. Values are never rewritten,
so mining names it (``case_variants``, ``data_engine.mine.case_variants``) once per column in the
run's column findings: the CLI's lines, ``mine --json`` and the Dagster metadata."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.cli import main
from data_engine.mine.case_variants import case_variant_issues, spelling_key
from data_engine.mine.columns import column_issues
from data_engine.steps import ingest_step, mine_step
from tests.homes import make_home

CONFIG = """\
[dataset]
name = "cities"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "city", "flag"]
column_types = { x = "numeric", city = "categorical", flag = "categorical" }

[mining]
model = "linear"
folds = 3
n_jobs = 1
"""


def cities(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cls = np.arange(n) % 2
    city = np.array(["Paris", "London"], dtype=object)[cls]
    city[[1, 5, 9]] = "london"
    city[[0, 2]] = "Paris\u00a0"  # a spreadsheet's no-break space (ingest trims only ASCII spaces)
    flag = np.where(np.arange(n) % 3 == 0, "True", "False").astype(object)
    flag[[3, 6]] = "true"
    flag[[4]] = "FALSE"
    flag[[7]] = None
    return pd.DataFrame({"id": [f"r{i:03d}" for i in range(n)], "x": rng.normal(0, 1, n) + 4 * cls,
                         "city": city, "flag": flag, "label": np.array(["a", "b"], dtype=object)[cls]})


CITY = ("2 values written in more than one way, differing only in letter case or surrounding spaces: "
        "'London' (27 rows) / 'london' (3 rows); 'Paris' (28 rows) / 'Paris\\xa0' (2 rows); the engine keeps every "
        "spelling as a category of its own (it does not rewrite values), so the models learn them apart; if they "
        "are one value, write it one way in the source file")
FLAG = ("2 values written in more than one way, differing only in letter case or surrounding spaces: "
        "'True' (18 rows) / 'true' (2 rows); 'False' (38 rows) / 'FALSE' (1 row); the engine keeps every "
        "spelling as a category of its own (it does not rewrite values), so the models learn them apart; if they "
        "are one value, write it one way in the source file")


def test_each_column_with_spellings_of_one_value_is_named_once():
    frame = cities()
    report = column_issues(frame[["x", "city", "flag"]], (np.arange(60) % 2),
                           {"x": "numeric", "city": "categorical", "flag": "categorical"})
    assert [i for i in report.issues if i["type"] == "case_variants"] == [
        {"type": "case_variants", "column": "city", "figure": 2.0, "reason": CITY},
        {"type": "case_variants", "column": "flag", "figure": 2.0, "reason": FLAG}]
    # Read, never rewritten.
    assert (frame["city"] == "Paris\u00a0").sum() == 2 and (frame["flag"] == "true").sum() == 2
    # An ASCII space at either end (a frame not read through ingest, which trims those) is a spelling too.
    spaced = case_variant_issues(pd.DataFrame({"c": ["Paris", "paris ", "Paris"]}), ["c"])
    assert spaced[0]["reason"].startswith("1 value written in more than one way, differing only in letter case or "
                                          "surrounding spaces: 'Paris' (2 rows) / 'paris ' (1 row); the engine")


def test_the_reason_names_at_most_three_groups_and_three_spellings():
    values = (["A"] * 9 + ["a"] * 5 + [" A"] * 4 + ["A "] * 3 + ["B"] * 5 + ["b"] * 2 + ["C"] * 4 + ["c"]
              + ["D", "d"] + ["e", "E"] + ["only"] * 3)
    issues = case_variant_issues(pd.DataFrame({"v": values}), ["v"])
    assert issues == [{"type": "case_variants", "column": "v", "figure": 5.0, "reason": (
        "5 values written in more than one way, differing only in letter case or surrounding spaces: "
        "'A' (9 rows) / 'a' (5 rows) / ' A' (4 rows) / 1 more; 'B' (5 rows) / 'b' (2 rows); 'C' (4 rows) / "
        "'c' (1 row); 2 more; the engine keeps every spelling as a category of its own (it does not rewrite "
        "values), so the models learn them apart; if they are one value, write it one way in the source file")}]
    assert case_variant_issues(pd.DataFrame({"v": ["a", "b", None, "ab"]}), ["v"]) == []
    assert spelling_key("\u00a0Stra\u00dfe ") == spelling_key("STRASSE") == "strasse"


def test_mining_names_the_spellings_in_its_findings_cli_and_metadata(tmp_path, capsys):
    home = make_home(tmp_path, CONFIG)
    cities().to_csv(home.landing / "train.csv", index=False)
    ingest_step(home, [home.landing / "train.csv"])
    summary = mine_step(home).summary
    found = [i for i in summary.dataset_issues if i["type"] == "case_variants"]
    assert found == [{"type": "case_variants", "column": "city", "figure": 2.0, "reason": CITY},
                     {"type": "case_variants", "column": "flag", "figure": 2.0, "reason": FLAG}]
    assert [i for i in summary.as_metadata()["dataset_issues"] if i["type"] == "case_variants"] == found
    capsys.readouterr()
    assert main(["--home", str(home.root), "mine"]) == 0
    out = capsys.readouterr().out
    assert out.count("case_variants") == 2
    assert f"column 'city': case_variants (2): {CITY}\n" in out and f"column 'flag': case_variants (2): {FLAG}\n" in out
    # mine --json and the detected_issues asset's metadata table (the Dagster path) carry the same rows.
    import json

    from assets.mine import issues_metadata

    assert main(["--home", str(home.root), "mine", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert [i for i in meta["dataset_issues"] if i["type"] == "case_variants"] == found
    rows = issues_metadata(meta)["dataset_issues"].value.records
    assert [r.data for r in rows if r.data["type"] == "case_variants"] == found
