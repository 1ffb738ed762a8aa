"""Issue 26 on the real-world corpus (``tests/cases/real-world/26_*``): a gold file missing a class,
a gold file relabelled in place by a second annotator, a review URL off this machine, and a batch
whose numeric column arrived as text. Each through the CLI, as a user runs it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.ship import registry
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

CASES = Path(__file__).resolve().parents[1] / "cases" / "real-world"


def _home(tmp_path: Path, extra: str = ""):
    return make_home(tmp_path, (CASES / "configs" / "tab3.toml").read_text(encoding="utf-8") + extra)


def _run(home, *argv: str) -> int:
    return main(["--home", str(home.root), *argv])


def _without(name: str, cls: str, out: Path) -> Path:
    """The case file ``name`` without the rows of class ``cls`` (a gold export that lost a class)."""
    with (CASES / name).open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([rows[0], *[r for r in rows[1:] if r[3] != cls]])
    return out


@pytest.mark.parametrize("missing", ["low", "mid", "high"])
def test_a_gold_file_missing_a_class_names_it_unmeasured_in_every_verdict(tmp_path, capsys, missing):
    home = _home(tmp_path)
    gold = _without("26_gold_full.csv", missing, home.gold_landing / f"gold_without_{missing}.csv")
    assert _run(home, "ingest", str(CASES / "26_train_three_classes.csv")) == 0
    assert _run(home, "ingest", "--gold", str(gold)) == 0
    assert _run(home, "train") == 0
    capsys.readouterr()
    assert _run(home, "evaluate", "--version", "1") == 0  # the first model: promoted, the hole named
    out = capsys.readouterr().out
    assert f"unmeasured on gold (fewer than 5 gold examples, [gate] unmeasured = 'out_of_fold'): class {missing!r} " \
           "(0 gold examples; out-of-fold recall" in out
    assert "no class has gold recall below" not in out
    with open_warehouse(home, read_only=True) as con:
        assert registry.gate_record(con, 1).unmeasured == (missing,)
    # With [gate] unmeasured = "refuse" the same model is refused, and says why.
    strict = _home(tmp_path / "strict", '\n[gate]\nunmeasured = "refuse"\n')
    gold = _without("26_gold_full.csv", missing, strict.gold_landing / "g.csv")
    assert _run(strict, "ingest", str(CASES / "26_train_three_classes.csv")) == 0
    assert _run(strict, "ingest", "--gold", str(gold)) == 0
    assert _run(strict, "train") == 0
    capsys.readouterr()
    assert _run(strict, "evaluate") == 1
    assert capsys.readouterr().out.startswith(f"REFUSED: gold cannot measure class(es) {missing!r}")


def test_gold_relabelled_in_place_is_said_and_the_champion_rescored(tmp_path, capsys):
    home = _home(tmp_path)
    assert _run(home, "ingest", str(CASES / "26_train_three_classes.csv")) == 0
    assert _run(home, "ingest", "--gold", str(CASES / "26_gold_full.csv")) == 0
    assert _run(home, "train") == 0 and _run(home, "deploy", "promote") == 0
    capsys.readouterr()
    assert _run(home, "score") == 0
    assert "gold changed" not in capsys.readouterr().out  # the gate scored the champion on this gold
    # A second annotator's export of the same 60 gold rows: 3 labels differ, nothing else. Said at ingest.
    assert _run(home, "ingest", "--gold", str(CASES / "26_gold_relabelled.csv")) == 0
    said = [ln for ln in capsys.readouterr().out.splitlines() if "gold changed" in ln]
    assert len(said) == 1 and said[0].startswith("  note: gold changed since gold ")
    assert said[0].endswith("3 label(s) changed in place, 0 added, 0 removed; the champion is re-scored on it by "
                            "`data-engine score` or the gold sensor, and the next gate verdict is decided on it")
    assert _run(home, "score") == 0
    out = capsys.readouterr().out
    # Scored on the rows the gate scores: 2 of the 60 gold rows copy a training row and are left out by both.
    assert ("3 label(s) changed in place, 0 added, 0 removed; champion v1 re-scored on 58 gold examples (left out 2 "
            "gold example(s) with an exact or near copy in the training data, as the gate does): accuracy ") in out
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT n_gold FROM gate_verdicts").fetchall() == [(58,)]
        versions = con.execute("SELECT count(*) FROM gold_versions").fetchall()[0][0]
        labels = dict(con.execute("SELECT example_id, label FROM current_labels WHERE example_id LIKE 'gold:%'"
                                  ).fetchall())
    assert versions == 2 and len(labels) == 60  # nothing lost: every gold row, with its new label
    capsys.readouterr()
    assert _run(home, "score") == 0 and "gold changed" not in capsys.readouterr().out  # said once


REMOTE_NOTE = ("note: review server https://labels.example.com is on another machine (labels.example.com); "
               "the API key $LS_KEY is sent there ([review] allow_remote = true)")


def test_a_remote_review_url_is_refused_then_said_first(tmp_path, capsys, monkeypatch, caplog):
    """Refused without allow_remote; with it, said first by `review push` (the key is unset here, so
    nothing is sent), by `labelstudio up` (what `make up` runs first; the server start is stubbed)
    and once per process in Dagster's log by the Label Studio resource."""
    remote = '\n[review]\nurl = "https://labels.example.com"\napi_key_env = "LS_KEY"\n'
    from data_engine.errors import ConfigError

    monkeypatch.delenv("LS_KEY", raising=False)
    with pytest.raises(ConfigError, match="labels.example.com is not this machine"):
        _home(tmp_path / "a", remote)
    home = _home(tmp_path / "b", remote + "allow_remote = true\n")
    assert _run(home, "review", "push") == 2
    assert capsys.readouterr().err.splitlines()[0] == REMOTE_NOTE

    from types import SimpleNamespace

    from data_engine.review.labelstudio import server

    monkeypatch.setattr(server, "ensure_server", lambda home, port=None: SimpleNamespace(
        reused=True, url="http://127.0.0.1:1", pid=1, data_dir=home.labelstudio_dir))
    assert _run(home, "labelstudio", "up") == 0
    assert capsys.readouterr().err.splitlines()[0] == REMOTE_NOTE

    import assets.resources as resources

    monkeypatch.setattr(resources, "_REMOTE_SAID", set())
    resource = resources.LabelStudioResource(api_key="not-a-real-key")
    with caplog.at_level("WARNING"):
        for _ in range(3):  # the review sensor opens a client every tick: said once
            with resource.client(home):
                pass
    said = [r.getMessage() for r in caplog.records if "is on another machine" in r.getMessage()]
    assert said == [REMOTE_NOTE] and "not-a-real-key" not in caplog.text


def test_a_numeric_column_arrived_as_text_fails_the_batch_naming_it(tmp_path, capsys):
    home = _home(tmp_path)
    assert _run(home, "ingest", str(CASES / "26_train_three_classes.csv")) == 0
    capsys.readouterr()
    assert _run(home, "ingest", str(CASES / "26_amount_as_text.csv")) == 1
    out = capsys.readouterr()
    assert "no good row: all 5 rows quarantined, rejected by column 'amount' (5 rows" in out.out + out.err
    with open_warehouse(home, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine").fetchall()[0][0] == 5  # nothing lost
