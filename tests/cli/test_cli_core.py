"""The core CLI as a user runs it (whole processes): init, seed-demo, ingest, status, bench ingest;
user mistakes print one line on stderr, no traceback, exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_engine.cli import main
from tests.conftest import TOY_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str | Path, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``data-engine [--home HOME] ARGS`` in a fresh process."""
    env = {k: v for k, v in os.environ.items() if k != "DATA_ENGINE_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    env["DATA_ENGINE_LOCK_WAIT"] = "5"
    cmd = [sys.executable, "-m", "data_engine.cli"] + (["--home", str(home)] if home else [])
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def assert_user_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    """Exit 2, nothing on stdout, exactly one line on stderr naming the problem, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("data-engine: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], f"{word!r} not in {lines[0]!r}"


def test_demo_flow_init_seed_ingest_status(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    assert cli("init", home=home).returncode == 0
    seeded = cli("seed-demo", "--noise", "0.1", "--seed", "3", "--batches", "2", home=home)
    assert seeded.returncode == 0 and "3 files" in seeded.stdout
    files = sorted((home / "landing").rglob("*.csv"))
    assert len(files) == 3 and (home / "oracle.csv").exists()
    first = cli("ingest", "--json", *files, home=home)
    assert first.returncode == 0, first.stderr
    results = json.loads(first.stdout)
    assert [r["status"] for r in results] == ["ingested"] * 3
    assert sum(r["rows_ok"] for r in results) == 1797 and sum(r["is_gold"] for r in results) == 1
    again = cli("ingest", *files, home=home)
    assert again.returncode == 0 and again.stdout.count("(already ingested)") == 3
    status = cli("status", "--json", home=home)
    report = json.loads(status.stdout)
    assert report["counts"]["examples"] == 1797 and report["counts"]["quarantine"] == 0
    # Gold is counted apart from the training labels in force.
    gold_rows = sum(r["rows_ok"] for r in results if r["is_gold"])
    assert gold_rows == 359  # GOLD_SHARE 0.2 of 1,797 digits
    assert len(report["batches"]) == 3
    assert report["labels"] == {"labeled": 1797 - gold_rows, "gold": gold_rows, "discarded": 0}
    text = cli("status", home=home).stdout
    assert "digits" in text and "examples=1797" in text


@pytest.mark.parametrize(
    "args, words",
    [
        (["ingest", "{tmp}/nope.csv"], ["no such file", "nope.csv"]),
        (["init", "--config", "{tmp}/missing.toml"], ["missing.toml", "no such file"]),
        (["init", "--config", "{tmp}/bad.toml"], ["bad.toml", "dataset.colour", "unknown key"]),
        (["init", "--config", "{tmp}/other.toml"], ["exists with another config", "--force"]),
        (["seed-demo", "--noise", "1.5"], ["--noise", "1.5"]),
        (["seed-demo"], ["seed-demo", "toy"]),
    ],
)
def test_user_mistakes_are_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    (tmp_path / "bad.toml").write_text(TOY_CONFIG + "colour = 'red'\n", encoding="utf-8")
    (tmp_path / "other.toml").write_text(TOY_CONFIG.replace('"toy"', '"other"'), encoding="utf-8")
    # The set-up in process (the whole-process init is test_demo_flow's); the mistake in a fresh process.
    assert main(["--home", str(home), "init", "--config", str(tmp_path / "toy.toml")]) == 0
    assert_user_error(cli(*[a.format(tmp=tmp_path) for a in args], home=home), *words)


def test_no_home_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("id,label,x,color\n1,a,1,red\n", encoding="utf-8")
    proc = cli("ingest", tmp_path / "x.csv", home=tmp_path / "missing")
    assert_user_error(proc, "no engine home here", "init")
    assert not (tmp_path / "missing").exists(), "a mistaken --home must not be created"


def test_broken_config_in_the_home_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    assert main(["--home", str(home), "init", "--config", str(tmp_path / "toy.toml")]) == 0
    (home / "engine.toml").write_text(TOY_CONFIG.replace("modality", "modalty"), encoding="utf-8")
    (tmp_path / "x.csv").write_text("id,label,x,color\n1,a,1,red\n", encoding="utf-8")
    assert_user_error(cli("ingest", tmp_path / "x.csv", home=home), "engine.toml", "dataset.modalty")


def test_bad_files_are_reported_not_raised(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    cli("init", "--config", tmp_path / "toy.toml", home=home)
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)))
    good = tmp_path / "good.csv"
    good.write_text("id,label,x,color\n1,a,1,red\n2,zz,2,blue\n", encoding="utf-8")
    proc = cli("ingest", junk, good, home=home)
    # A rejected file makes the command fail (scripts notice), without a traceback; the good file is stored.
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = [ln for ln in proc.stdout.strip().splitlines() if not ln.startswith("  ")]
    assert "rejected" in lines[0] and "binary" in lines[0]
    assert "ingested" in lines[1] and "quarantined=1" in lines[1]
    assert cli("ingest", good, home=home).returncode == 0


def test_bench_ingest_small(tmp_path: Path) -> None:
    rows = 3000
    proc = cli("bench", "ingest", "--rows", str(rows), "--repeat", "2", "--json", "--workdir", tmp_path / "bench")
    assert proc.returncode in (0, 1), proc.stderr  # 1 = above the 2.5x target (start-up dominates tiny files)
    b = json.loads(proc.stdout)
    # The generator spoils rows i % 100 == 7; one kind in five repeats the previous id (two rows lost).
    bad = [i for i in range(rows) if i % 100 == 7]
    expected_q = len(bad) + sum(1 for i in bad if (i // 100) % 5 == 3)
    assert (b["engine_rows_in"], b["duckdb_rows"]) == (rows, rows)
    assert b["engine_rows_quarantined"] == expected_q and b["engine_rows_ok"] == rows - expected_q
    assert b["repeat"] == 2 and len(b["runs"]) == 2
    for r in b["runs"]:
        assert r["engine_s"] > 0 and r["duckdb_s"] > 0 and r["wall_ratio"] == pytest.approx(r["engine_s"] / r["duckdb_s"], 0.01)
    assert b["within_target"] == (b["wall_ratio"] <= 2.5) and proc.returncode == (0 if b["within_target"] else 1)


def test_ingest_command_imports_no_heavy_libraries(tmp_path: Path) -> None:
    # Start-up is part of every command's wall clock (and of `bench ingest`): building the parser and
    # ingesting a file must not pull in numpy, pandas, scikit-learn, cleanlab or dagster.
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    assert cli("init", "--config", tmp_path / "toy.toml", home=home).returncode == 0
    good = tmp_path / "good.csv"
    good.write_text("id,label,x,color\n1,a,1,red\n2,b,2,blue\n", encoding="utf-8")
    script = (
        "import json, sys\n"
        "from data_engine.cli import main\n"
        f"code = main(['--home', {str(home)!r}, 'ingest', {str(good)!r}])\n"
        "heavy = ('numpy', 'pandas', 'sklearn', 'cleanlab', 'dagster', 'pyarrow', 'scipy')\n"
        "print(json.dumps({'code': code, 'heavy': sorted({m.split('.')[0] for m in sys.modules} & set(heavy))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATA_ENGINE_HOME"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, out.stderr


def test_status_names_landed_files_not_ingested_and_the_column_types(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    cli("init", "--config", tmp_path / "toy.toml", home=home)
    (home / "landing" / "notes.xlsx").write_bytes(b"PK")
    good = tmp_path / "good.csv"
    good.write_text("id,label,x,color,extra\n1,a,1,red,q\n", encoding="utf-8")
    out = cli("ingest", good, home=home).stdout
    assert "column types (fixed from this batch): x=numeric, color=categorical" in out
    assert "ignored columns: 'extra'" in out
    status = cli("status", home=home)
    assert status.returncode == 0
    assert "column types: x=numeric, color=categorical" in status.stdout
    assert "not ingested: landing/notes.xlsx - not a data file" in status.stdout


def test_ingesting_a_predictions_file_says_what_it_is(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    assert cli("init", "--config", tmp_path / "toy.toml", home=home).returncode == 0
    preds = home / "landing" / "predictions" / "p.csv"
    preds.parent.mkdir(parents=True)
    preds.write_text("example_id,a,b,model\n1,0.5,0.5,m\n", encoding="utf-8")
    assert_user_error(cli("ingest", preds, home=home), "p.csv", "a model's predictions", "mine")


def test_an_explicit_ingest_of_a_part_file_is_refused_as_status_skips_it(tmp_path: Path) -> None:
    # One rule for names still being written: `ingest FILE` refuses what `status` lists as not
    # ingested, before anything is recorded (no rejected batch beside the "not ingested" line).
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    assert cli("init", "--config", tmp_path / "toy.toml", home=home).returncode == 0
    for part in (home / "landing" / "upload.csv.part", tmp_path / "elsewhere.csv.tmp"):
        part.write_text("id,label,x,color\n1,a,1,red\n", encoding="utf-8")
        assert_user_error(cli("ingest", part, home=home), part.name, "still being written", "renamed")
    status = json.loads(cli("status", "--json", home=home).stdout)
    assert status["batches"] == []
    assert "still being written" in status["not_ingested"]["upload.csv.part"]


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    # `data-engine status | head -1`: the closed pipe is the reader's choice, not a crash.
    home = tmp_path / "home"
    (tmp_path / "toy.toml").write_text(TOY_CONFIG, encoding="utf-8")
    assert cli("init", "--config", tmp_path / "toy.toml", home=home).returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "DATA_ENGINE_HOME"} | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "data_engine.cli", "--home", str(home), "status"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    proc.stdout.close()  # before the child writes: its first write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
