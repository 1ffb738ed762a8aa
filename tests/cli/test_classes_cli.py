"""`data-engine classes`, `classes add`, `classes rename` and what `ingest` says about a class that
arrived later, as a user runs them (whole processes)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli_core import assert_user_error, cli

CONFIG = """\
[dataset]
name = "pets"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x"]
column_types = { x = "numeric" }
"""


def test_a_class_that_arrives_later_is_said_then_added(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg = tmp_path / "engine.toml"
    cfg.write_text(CONFIG, encoding="utf-8")
    assert cli("init", "--config", cfg, home=home).returncode == 0
    one, two = tmp_path / "one.csv", tmp_path / "two.csv"
    one.write_text("id,label,x\n1,cat,1\n2,dog,2\n", encoding="utf-8")
    two.write_text("id,label,x\n3,bird,3\n4,dog,4\n5,bird,5\n", encoding="utf-8")
    assert cli("ingest", one, home=home).returncode == 0
    proc = cli("ingest", "--json", two, home=home)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)[0]
    assert (result["rows_quarantined"], result["unknown_labels"]) == (2, {"bird": 2})
    assert any("`data-engine classes add bird`" in w for w in result["warnings"])

    added = cli("classes", "add", "bird", home=home)
    assert added.returncode == 0, added.stderr
    assert "re-admitted 2 quarantined rows (bird=2)" in added.stdout
    # Gold is counted apart (a trial read gold examples among the labels in force); its id 1 is
    # also a training id, and each is counted once, on its own side.
    gold = tmp_path / "gold.csv"
    gold.write_text("id,label,x\n1,dog,1\n9,bird,3\n", encoding="utf-8")
    assert cli("ingest", "--gold", gold, home=home).returncode == 0
    listed = json.loads(cli("classes", "--json", home=home).stdout)
    assert [(c["class_label"], c["position"], c["labels_in_force"], c["gold_labels"]) for c in listed["classes"]] == [
        ("cat", 0, 1, 0), ("dog", 1, 2, 1), ("bird", 2, 2, 1)]
    assert "labels in force: 2       gold: 1" in cli("classes", home=home).stdout
    assert listed["config_differs"] is None
    renamed = json.loads(cli("classes", "rename", "cat", "feline", "--json", home=home).stdout)
    assert (renamed["labels_renamed"], renamed["classes"]) == (1, ["feline", "dog", "bird"])
    assert_user_error(cli("classes", "add", "dog", home=home), "already a class", "'dog'")
    assert_user_error(cli("classes", "rename", "cow", "ox", home=home), "'cow' is not a class")


def test_a_configured_class_list_that_differs_is_said_at_the_start_of_ingest(tmp_path: Path) -> None:
    home = tmp_path / "home"
    cfg = tmp_path / "engine.toml"
    cfg.write_text(CONFIG + 'classes = ["cat", "dog"]\n', encoding="utf-8")
    assert cli("init", "--config", cfg, home=home).returncode == 0
    one = tmp_path / "one.csv"
    one.write_text("id,label,x\n1,cat,1\n2,dog,2\n", encoding="utf-8")
    assert cli("ingest", one, home=home).returncode == 0
    cfg.write_text(CONFIG + 'classes = ["cat", "dog", "bird"]\n', encoding="utf-8")
    assert cli("init", "--config", cfg, "--force", home=home).returncode == 0
    two = tmp_path / "two.csv"
    two.write_text("id,label,x\n3,bird,3\n4,dog,4\n", encoding="utf-8")
    proc = cli("ingest", two, home=home)
    assert proc.returncode == 0
    first = proc.stderr.splitlines()[0]
    assert first.startswith("note: [dataset] classes ('cat', 'dog', 'bird') differ") and first.endswith(
        "run `data-engine classes add bird`"), proc.stderr
    listed = cli("classes", home=home)
    assert "`data-engine classes add bird`" in listed.stderr and "cat" in listed.stdout
