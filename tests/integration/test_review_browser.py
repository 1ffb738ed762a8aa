"""A reviewer's view in headless Chromium: log in to the real server and see a pushed task."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from data_engine.review.labelstudio.server import PASSWORD_FILE
from data_engine.review.project import make_client
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.timeout(600)]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_review.py"


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_review", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_pushed_task_shows_the_digit_the_choices_and_the_suggestion(review_home, label_studio, tmp_path):
    home, _ = review_home(n=5)
    shutil.copy(label_studio.secrets_dir / PASSWORD_FILE, home.secrets / PASSWORD_FILE)
    with open_warehouse(home) as con:
        push_queue(con, make_client(home), home.config)
    out = _screenshot_module().screenshot(home, tmp_path / "task.png")
    # The script waited for the PNG digit and the "not a valid example" choice before shooting.
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
