"""The Dagster UI in headless Chromium shows the whole lineage, ingestion to deployment."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.browser.chromium import chromium_page

pytestmark = pytest.mark.browser
REPO = Path(__file__).resolve().parents[2]
LINEAGE = ["landed_batch", "champion_scores", "oof_predictions", "detected_issues", "review_queue",
           "review_tasks", "review_verdicts", "candidate_model", "champion_model"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def _dagster_ui(dagster_home: Path, engine_home: Path) -> Iterator[int]:
    """The Dagster webserver of this repository on a free loopback port, on ``dagster_home``'s
    instance and the engine home ``engine_home``; yields the port."""
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DATA_ENGINE_HOME": str(engine_home),
           "LABEL_STUDIO_API_KEY": "unused-by-the-ui", "PYTHONPATH": str(REPO)}
    web = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
         "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/server_info", 120)
        yield port
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)


def _skip_welcome(page) -> None:
    try:  # the first visit opens a "Join the Dagster community" dialog over the page
        page.get_by_role("button", name="Skip").click(timeout=8000)
    except Exception:
        pass


def _shot_path(tmp_path: Path, name: str) -> Path:
    """docs/NAME with DATA_ENGINE_SCREENSHOTS set (refreshing the docs' pictures), else a temp file."""
    return REPO / "docs" / name if os.environ.get("DATA_ENGINE_SCREENSHOTS") else tmp_path / name


def test_asset_graph_shows_the_whole_lineage(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "scripts" / "dagster.yaml", dagster_home / "dagster.yaml")
    with _dagster_ui(dagster_home, tmp_path / "home") as port, chromium_page() as page:
        page.goto(f"http://127.0.0.1:{port}/asset-groups", wait_until="domcontentloaded")
        _skip_welcome(page)
        # With several asset groups the graph starts collapsed to one box per group.
        page.get_by_text("Global asset lineage").wait_for(timeout=60000)
        page.wait_for_timeout(2000)
        page.mouse.click(page.viewport_size["width"] - 400, page.viewport_size["height"] - 80, button="right")
        page.get_by_role("menuitem", name="Expand all groups").click(timeout=10000)
        try:
            page.get_by_text("Hide navigation").click(timeout=3000)
        except Exception:
            pass
        for name in LINEAGE:
            page.get_by_text(name, exact=True).first.wait_for(timeout=60000)
        page.wait_for_timeout(1500)
        shot = _shot_path(tmp_path, "dagster-lineage.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000


def test_the_drift_check_of_a_drifted_batch_shows_on_its_asset_page(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from assets.ingest import batches_partitions, landed_batch
    from assets.resources import EngineResource
    from tests import homes
    from tests.ingest.test_batch_drift import CONFIG, _rows

    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "scripts" / "dagster.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    home = homes.make_home(tmp_path, CONFIG)
    _rows(600, 0, 0).to_csv(home.landing / "train.csv", index=False)
    grams = _rows(200, 1, 10_000)
    grams["weight"] = grams["weight"] * 1000  # kilograms landed as grams
    grams.to_csv(home.landing / "grams.csv", index=False)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(batches_partitions.name, ["train.csv", "grams.csv"])
        for key in ("train.csv", "grams.csv"):
            assert dg.materialize([landed_batch], partition_key=key, instance=instance,
                                  resources={"engine": EngineResource(home=str(home.root))}).success
    with _dagster_ui(dagster_home, home.root) as port, chromium_page(height=1300) as page:
        page.goto(f"http://127.0.0.1:{port}/assets/landed_batch?view=checks", wait_until="domcontentloaded")
        _skip_welcome(page)
        page.get_by_text("drift", exact=True).first.wait_for(timeout=60000)
        page.get_by_text("drifted: weight", exact=False).first.wait_for(timeout=60000)
        page.wait_for_timeout(1500)
        shot = _shot_path(tmp_path, "dagster-drift-check.png")
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
