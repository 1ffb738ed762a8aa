"""What the task round-trip tests share: a home that talks to the session's Label Studio, the queue
pushed and read back from the server, and answers pulled into the labels in force."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data_engine.review.labelstudio.labeling import FROM_NAME
from data_engine.review.labelstudio.server import PASSWORD_FILE, TOKEN_FILE
from data_engine.review.oracle import oracle_path, read_oracle
from data_engine.review.project import make_client
from data_engine.review.pull import PullResult, pull_verdicts
from data_engine.review.push import push_queue
from data_engine.review.simulate import simulate_reviews
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from data_engine.tasks import task_for
from tests.homes import make_home


def server_home(tmp_path: Path, label_studio: Any, config: dict[str, Any]) -> Home:
    """A home whose ``[review] url`` is the session's server, with its token file (0600)."""
    home = make_home(tmp_path, config)
    shutil.copy(label_studio.secrets_dir / TOKEN_FILE, home.secrets / TOKEN_FILE)
    os.chmod(home.secrets / TOKEN_FILE, 0o600)
    return home


@dataclass
class Pushed:
    """The queue as the server holds it: tasks by example id, and one flagged example's task with
    the model's suggestion (``suggested``) and the prediction the server kept (``regions``)."""

    client: Any
    project_id: int
    sent: int
    by_example: dict[str, dict[str, Any]]
    flagged_example: str
    suggested: Any
    regions: list[dict[str, Any]]


def push_and_read_back(home: Home, run_id: int) -> Pushed:
    """Push mining run ``run_id``'s queue and read it back; the flagged example's task must carry
    the label check's reason as its note."""
    client = make_client(home)
    with open_warehouse(home) as con:
        pushed = push_queue(con, client, home.config)
        flagged = dict(con.execute("SELECT example_id, reason FROM issues WHERE issue_type = 'label' AND is_issue "
                                   "AND run_id = ?", [run_id]).fetchall())
    tasks = client.tasks_after(pushed.project_id, 0)
    assert len(tasks) == pushed.sent > 3
    by_example = {t["data"]["example_id"]: t for t in tasks}
    example = next(e for e in by_example if e in flagged)
    assert by_example[example]["data"]["label_note"] == flagged[example]
    sdk_task = client._sdk.tasks.get(id=by_example[example]["id"])
    (prediction,) = [p if isinstance(p, dict) else p.dict() for p in sdk_task.predictions]
    return Pushed(client, pushed.project_id, pushed.sent, by_example, example,
                  json.loads(by_example[example]["data"]["suggested_label"]),
                  [r for r in prediction["result"] if r["from_name"] == FROM_NAME])


def answer_and_pull(home: Home, pushed: Pushed, answers: dict[str, list[dict[str, Any]]],
                    classes: list[str]) -> tuple[PullResult, dict[str, tuple[Any, bool, str]]]:
    """Post ``answers`` (example id -> Label Studio result) by hand, let the simulated reviewer
    answer the rest from the oracle, pull; returns the pull and ``{example id: (label, is_discarded,
    source)}`` in force."""
    for example_id, result in answers.items():
        pushed.client.create_annotation(pushed.by_example[example_id]["id"], result)
    label_task = task_for(home.config.dataset)
    simulate_reviews(pushed.client, pushed.project_id, read_oracle(oracle_path(home), label_task), classes,
                     accuracy=1.0, label_task=label_task)
    with open_warehouse(home) as con:
        pulled = pull_verdicts(con, pushed.client, home.config)
        in_force = {r[0]: (r[1], r[2], r[3]) for r in con.execute(
            "SELECT example_id, label, is_discarded, source FROM current_labels").fetchall()}
    return pulled, in_force


def shoot_flagged_task(home: Home, label_studio: Any, pushed: Pushed, name: str, tmp_path: Path) -> Path:
    """The flagged example's task as a reviewer sees it in the real Label Studio, shot in headless
    Chromium by ``scripts/screenshot_review.py`` (logged in as the server's admin); saved as
    ``docs/NAME`` with ``DATA_ENGINE_SCREENSHOTS`` set (to refresh the docs' picture), else in
    ``tmp_path``. Returns the PNG's path."""
    import importlib.util

    shutil.copy(label_studio.secrets_dir / PASSWORD_FILE, home.secrets / PASSWORD_FILE)
    os.chmod(home.secrets / PASSWORD_FILE, 0o600)
    repo = Path(__file__).resolve().parents[2]
    spec = importlib.util.spec_from_file_location("screenshot_review", repo / "scripts" / "screenshot_review.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = repo / "docs" / name if os.environ.get("DATA_ENGINE_SCREENSHOTS") else tmp_path / name
    module.screenshot(home, out, pushed.by_example[pushed.flagged_example]["id"])
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    return out
