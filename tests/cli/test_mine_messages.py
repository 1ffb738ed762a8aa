"""What `mine` says on a small numeric home: the rare-class fact once, in the engine's words (no
repeated log lines, no raw cleanlab UserWarning), and the embedding as what it is for numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.cli.test_cli_core import cli

NUMERIC_CONFIG = """\
[dataset]
name = "nums"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "y"]
classes = ["a", "b", "c"]
"""


def test_mine_says_each_fact_once_and_the_embedding_it_uses(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    labels = ["a", "b"] * 29 + ["c"]  # 'c' has one labeled example: fewer than the 5 folds, too few for cleanlab
    rows = [f"{i},{rng.normal(3 * (lab == 'b'), 1):.3f},{rng.normal():.3f},{lab}" for i, lab in enumerate(labels)]
    data = tmp_path / "nums.csv"
    data.write_text("id,x,y,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "nums.toml").write_text(NUMERIC_CONFIG, encoding="utf-8")
    home = tmp_path / "home"
    assert cli("init", "--config", tmp_path / "nums.toml", home=home).returncode == 0
    assert cli("ingest", data, home=home).returncode == 0
    run = cli("mine", home=home)
    assert run.returncode == 0, run.stderr
    said = run.stdout + run.stderr
    assert said.count("fewer labeled examples than") == 1, said
    assert "classes with fewer labeled examples than the 5 folds: c" in run.stdout
    assert "too few examples for confident learning to judge: c" in run.stdout
    assert "UserWarning" not in run.stderr and "cleanlab" not in run.stderr, run.stderr
    embedding = next(line for line in run.stdout.splitlines() if line.startswith("embedding: "))
    assert embedding.startswith("embedding: standardised numbers, reduced by PCA"), embedding
    assert "tfidf" not in embedding
