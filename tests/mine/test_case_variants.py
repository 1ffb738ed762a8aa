"""A categorical value spelt in two ways that differ only in letter case or surrounding spaces
("True" / "true", "Paris" / "paris ") is two categories to the models. Values are never rewritten,
so mining names it (``case_variants``, ``data_engine.mine.case_variants``) once per column in the
run's column findings: the CLI's lines, ``mine --json`` and the Dagster metadata. Classes of the label
column spelt so (a home without ``[dataset] classes``) are named the same way, with how to merge them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.cli import main
from data_engine.mine.case_variants import case_variant_issues, label_case_variant_issues, spelling_key
from data_engine.mine.columns import column_issues
from data_engine.steps import ingest_step, mine_step
from data_engine.store.classes import relabel_command
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


# A home without [dataset] classes: the first labeled batch's distinct labels become the classes, so
# two spellings of one class in it are two classes. Never rewritten; the mining run names them.
PETS = """\
[dataset]
name = "pets"
modality = "tabular"
{task}id_column = "id"
label_column = "{label}"
feature_columns = ["x"]
column_types = {{ x = "numeric" }}

[mining]
model = "linear"
folds = 3
n_jobs = 1
"""

PETS_LABEL = ("1 class written in more than one way, differing only in letter case or spaces: 'cat' (26 rows) / "
              "'Cat' (4 rows); each spelling is a class of its own (the engine does not rewrite labels), so the models "
              "learn them apart; if they are one class, relabel the examples of the other spellings, e.g. "
              "`data-engine relabel --where \"label_in_force = 'Cat'\" --label cat` (one ledger event each; the stored "
              "values stay as written), or write one spelling in the source file and land it again; the emptied class "
              "stays, with no examples (classes are never removed). [dataset] classes maps no spelling: set before the "
              "first labeled batch, it quarantines a label spelt unlike its class")


def pets(labels: tuple[str, str], n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    cls = np.arange(n) % 2
    label = np.array(labels, dtype=object)[cls]
    return pd.DataFrame({"id": [f"r{i:03d}" for i in range(n)], "x": rng.normal(0, 1, n) + 4 * cls, "label": label})


def test_classes_spelt_two_ways_are_named_with_rows_and_the_way_to_merge(tmp_path, capsys):
    home = make_home(tmp_path, PETS.format(task="", label="label"))
    frame = pets(("cat", "dog"))
    frame.loc[[0, 2, 4], "label"] = "Cat"
    frame.loc[6, "label"] = "Cat "  # ingest trims the space: the class 'Cat'
    frame.to_csv(home.landing / "train.csv", index=False)
    (result,) = ingest_step(home, [home.landing / "train.csv"])
    assert result.notes == [
        "classes (inferred from this batch): 'Cat', 'cat', 'dog'; 'Cat' and 'cat' differ only in case or spaces and are "
        "separate classes (labels are never rewritten); if they are one, the next mining run's case_variants finding "
        "names their rows and how to make them one"]
    found = [i for i in mine_step(home).summary.dataset_issues if i["type"] == "case_variants"]
    assert found == [{"type": "case_variants", "column": "label", "figure": 1.0, "reason": PETS_LABEL}]
    # The advised command merges them; the emptied class 'Cat' has no row, so it is no spelling in use.
    assert main(["--home", str(home.root), "relabel", "--where", "label_in_force = 'Cat'", "--label", "cat"]) == 0
    assert capsys.readouterr().out == "relabel where label_in_force = 'Cat': 4 matched, changed 4, 0 already so\n"
    assert [i for i in mine_step(home).summary.dataset_issues if i["type"] == "case_variants"] == []


def test_tags_spelt_two_ways_are_named_in_a_multilabel_run(tmp_path):
    home = make_home(tmp_path, PETS.format(task='task = "multilabel"\n', label="tags"))
    frame = pets(("bug", "billing|urgent")).rename(columns={"label": "tags"})
    frame.loc[[0, 2, 4], "tags"] = "Bug"
    frame.loc[6, "tags"] = "BUG|urgent"
    frame.to_csv(home.landing / "train.csv", index=False)
    ingest_step(home, [home.landing / "train.csv"])
    found = [i for i in mine_step(home).summary.dataset_issues if i["type"] == "case_variants"]
    assert found == [{"type": "case_variants", "column": "tags", "figure": 1.0, "reason": (
        "1 tag written in more than one way, differing only in letter case or spaces: 'bug' (26 rows) / 'Bug' (3 rows) "
        "/ 'BUG' (1 row); each spelling is a tag of its own (the engine does not rewrite labels), so the models learn "
        "them apart; if they are one tag, write one spelling in the source file and land it again (`data-engine "
        "relabel` gives a whole label, not one tag); the emptied tag stays, with no examples (classes are never "
        "removed). [dataset] classes maps no spelling: set before the first labeled batch, it quarantines a label "
        "with a tag spelt unlike its tag")}]


def test_label_spellings_counted_and_the_relabel_command_quoted():
    issues = label_case_variant_issues("y", ["Yes", "no", "yes", "No", "NO", "maybe", "It's", "it's"],
                                       [3, 9, 5, 1, 0, 4, 2, 2])
    assert [i["figure"] for i in issues] == [3.0]
    assert issues[0]["reason"].startswith(
        "3 classes written in more than one way, differing only in letter case or spaces: 'yes' (5 rows) / 'Yes' "
        "(3 rows); \"It's\" (2 rows) / \"it's\" (2 rows); 'no' (9 rows) / 'No' (1 row); each spelling is a class of its own")
    assert "e.g. `data-engine relabel --where \"label_in_force = 'Yes'\" --label yes`" in issues[0]["reason"]
    # No class with rows spelt twice ('NO' has none): no finding.
    assert label_case_variant_issues("y", ["no", "NO", "yes"], [4, 0, 4]) == []
    assert relabel_command("It's", "it's") == "data-engine relabel --where \"label_in_force = 'It''s'\" --label 'it'\"'\"'s'"
    assert relabel_command('say "hi"', "hi") == "data-engine relabel --where 'label_in_force = '\"'\"'say \"hi\"'\"'\"'' --label hi"
