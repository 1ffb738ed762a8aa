"""The loop under the real Dagster daemon, sensors on, with the real Label Studio: a labeled file
dropped into landing/ is ingested, mined and pushed; the simulated reviewer answers in Label
Studio; the verdicts are pulled, a candidate is trained, gated and deployed. Nobody runs anything."""

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from data_engine.commands.core import init_home
from data_engine.demo.data import seed_demo
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.e2e.dagster_daemon import REPO, running_daemon, wait_for

pytestmark = pytest.mark.integration


def _query(home: Home, sql: str) -> tuple | None:
    if not home.warehouse_path.exists():
        return None
    try:
        with open_warehouse(home, read_only=True, wait_s=2) as con:
            return con.execute(sql).fetchone()
    except Exception:  # a run holds the write lock: ask again next second
        return None


def _config(url: str) -> str:
    base = (REPO / "data_engine" / "store" / "default_config.toml").read_text()
    base = base.split("[review]")[0]
    return base + f"""
[mining]
model = "linear+knn"

[review]
url = "{url}"
project_title = "e2e-{uuid.uuid4().hex[:8]}"
budget = 40

[retrain]
min_new_labels = 20
"""


def test_dropped_file_to_new_champion_with_no_manual_run(tmp_path: Path, label_studio) -> None:
    home = Home(tmp_path / "home")
    cfg_file = tmp_path / "engine.toml"
    cfg_file.write_text(_config(label_studio.url))
    init_home(home, cfg_file)
    # Seed into a staging folder, then move the files in: the sensor never sees half a file.
    staging = Home(tmp_path / "staging")
    init_home(staging, cfg_file)
    seed_demo(staging, noise=0.2, seed=1, batches=1)
    (staging.root / "oracle.csv").replace(home.oracle_path)
    env = {"LABEL_STUDIO_API_KEY": label_studio.token}
    with running_daemon(home.root, env) as dagster_home:
        log = dagster_home / "daemon.log"
        (staging.gold_landing / "digits_gold.csv").replace(home.gold_landing / "digits_gold.csv")
        (staging.landing / "digits_batch_01.csv").replace(home.landing / "digits_batch_01.csv")
        wait_for(lambda: (_query(home, "SELECT count(*) FROM deployments") or (0,))[0] >= 1, 600,
                 "the first champion (ingest -> retrain -> gate -> deploy)", log)
        wait_for(lambda: (_query(home, "SELECT count(*) FROM review_tasks") or (0,))[0] >= 20, 600,
                 "the mined queue pushed to Label Studio", log)
        # The reviewer answers in Label Studio, as a person would in its UI.
        answered = subprocess.run(
            [sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "review", "simulate",
             "--accuracy", "1.0"], cwd=REPO, env={**__import__("os").environ, **env},
            capture_output=True, text=True, timeout=300)
        assert answered.returncode == 0, answered.stderr
        wait_for(lambda: (_query(home, "SELECT count(*) FROM label_events WHERE source = 'review'") or (0,))[0] >= 20,
                 600, "the review sensor to pull the verdicts", log)
        wait_for(lambda: (_query(home, "SELECT count(*) FROM models WHERE label_snapshot >= "
                                       "(SELECT min(event_id) FROM label_events WHERE source = 'review')") or (0,))[0] >= 1,
                 600, "a candidate trained on the reviewed labels", log)
        wait_for(lambda: (_query(home, "SELECT count(*) FROM models WHERE status IN ('champion', 'refused', 'retired') "
                                       "AND label_snapshot >= (SELECT min(event_id) FROM label_events "
                                       "WHERE source = 'review')") or (0,))[0] >= 1,
                 300, "the gate's verdict on that candidate", log)
    with open_warehouse(home, read_only=True) as con:
        deployments = con.execute("SELECT count(*) FROM deployments WHERE action = 'promote'").fetchone()[0]
        newest = con.execute("SELECT version, status, reason FROM models ORDER BY version DESC LIMIT 1").fetchone()
        runs_mined = con.execute("SELECT count(*) FROM mining_runs").fetchone()[0]
    assert runs_mined >= 1
    # The corrected labels beat (or tie) the noisy ones on gold, so the new candidate is deployed.
    assert deployments >= 2, f"newest model: {newest}"
