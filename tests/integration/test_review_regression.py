"""Against the real Label Studio server: a regression set's flagged values go out as tasks with a
``<Number>`` answer pre-filled with the model's prediction, the simulated reviewer answers, and the
pull brings the true numbers into the ledger (and "not a valid example" discards)."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, FROM_NAME, TO_NAME
from data_engine.review.labelstudio.server import TOKEN_FILE
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.project import make_client
from data_engine.review.pull import pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.steps import mine_step
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests.review_support import WRONG_READINGS, readings_home

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_numbers_go_to_label_studio_and_come_back_as_labels(tmp_path, label_studio, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    home, frame, truth = readings_home(tmp_path, {"url": label_studio.url,
                                                  "project_title": f"it-{uuid.uuid4().hex[:10]}"})
    shutil.copy(label_studio.secrets_dir / TOKEN_FILE, home.secrets / TOKEN_FILE)
    os.chmod(home.secrets / TOKEN_FILE, 0o600)
    mine_step(home)
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)  # the server validated the <Number> config
    tasks = {t["data"]["example_id"]: t for t in client.tasks_after(pushed.project_id, 0)}
    wrong = [f"r{i:03d}" for i in WRONG_READINGS]
    assert set(wrong) <= set(tasks)
    task = tasks["r003"]
    assert task["data"]["label_note"].startswith(f"given {float(frame.loc[3, 'value']):g}, predicted ")
    # The discard goes to one example, the true numbers to the rest.
    discard = tasks[wrong[-1]]
    label_task = task_for(home.config.dataset)
    client.create_annotation(discard["id"], label_task.prediction_result(DISCARD_CHOICE, from_name=FROM_NAME,
                                                                         to_name=TO_NAME), lead_time=3.0)
    sim = simulate_reviews(client, pushed.project_id, read_oracle(oracle_path(home), label_task), [], accuracy=1.0,
                           label_task=label_task)
    assert sim.answered == pushed.sent - 1
    with open_warehouse(home) as con:
        pull_verdicts(con, client, home.config)
        labels = {r[0]: (r[1], r[2]) for r in
                  con.execute("SELECT example_id, label, is_discarded FROM current_labels").fetchall()}
    for ex, i in zip(wrong[:-1], WRONG_READINGS[:-1]):
        assert labels[ex] == (repr(float(truth[i])), False)
    assert labels[wrong[-1]][1] is True


@pytest.mark.browser
def test_a_number_task_in_the_browser(tmp_path, label_studio, monkeypatch):
    """The reviewer's view of a flagged value: given value, prediction and interval, the Number field."""
    import importlib.util
    from pathlib import Path

    from data_engine.review.labelstudio.server import PASSWORD_FILE

    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    home, _, _ = readings_home(tmp_path, {"url": label_studio.url, "project_title": f"it-{uuid.uuid4().hex[:10]}"})
    for name in (TOKEN_FILE, PASSWORD_FILE):
        shutil.copy(label_studio.secrets_dir / name, home.secrets / name)
        os.chmod(home.secrets / name, 0o600)
    mine_step(home)
    with open_warehouse(home) as con:
        push_queue(con, make_client(home), home.config)
    script = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_review.py"
    spec = importlib.util.spec_from_file_location("screenshot_review", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = module.screenshot(home, tmp_path / "number-task.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
