"""The Dagster UI in headless Chromium shows the whole lineage, ingestion to deployment."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
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


def test_asset_graph_shows_the_whole_lineage(tmp_path: Path) -> None:
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copy(REPO / "scripts" / "dagster.yaml", dagster_home / "dagster.yaml")
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home), "DATA_ENGINE_HOME": str(tmp_path / "home"),
           "LABEL_STUDIO_API_KEY": "unused-by-the-ui", "PYTHONPATH": str(REPO)}
    web = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-h", "127.0.0.1", "-p", str(port),
         "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_http(f"http://127.0.0.1:{port}/server_info", 120)
        with chromium_page() as page:
            page.goto(f"http://127.0.0.1:{port}/asset-groups", wait_until="domcontentloaded")
            try:  # the first visit opens a "Join the Dagster community" dialog over the graph
                page.get_by_role("button", name="Skip").click(timeout=8000)
            except Exception:
                pass
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
            shot = REPO / "docs" / "dagster-lineage.png" if os.environ.get("DATA_ENGINE_SCREENSHOTS") \
                else tmp_path / "dagster-lineage.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
    finally:
        os.killpg(web.pid, signal.SIGTERM)
        web.wait(timeout=30)
