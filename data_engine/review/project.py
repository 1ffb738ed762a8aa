"""The Label Studio project of this engine's dataset: its title, classes, creation, and which tasks the
server already has."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from data_engine.errors import EngineError, ReviewServiceError
from data_engine.review.identity import ProjectRef, check_project, reconcile_inventory, record_project
from data_engine.review.labelstudio.client import ReviewClient
from data_engine.review.labelstudio.labeling import DISCARD_CHOICE, NUMERIC_FIELDS, label_config
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.schema import load_classes
from data_engine.tasks import task_for


REVIEW_VIEW_TITLE = "to review, by priority"


def review_view(score_fields: list[str]) -> dict[str, Any]:
    """The Data Manager view saved with the project: tasks nobody has answered yet, highest
    priority first, with the numeric task fields (``NUMERIC_FIELDS`` and the detectors'
    ``*_score`` fields) typed as numbers, so they sort numerically and take range filters
    ("priority between 0.8 and 1"). Label Studio types task data columns per view
    (``columnsDisplayType``); without it they are text."""
    numeric = [*NUMERIC_FIELDS, *score_fields]
    return {
        "title": REVIEW_VIEW_TITLE,
        "type": "list",
        "target": "tasks",
        "filters": {"conjunction": "and", "items": [
            {"filter": "filter:tasks:total_annotations", "operator": "equal", "type": "Number", "value": 0}]},
        "ordering": ["-tasks:data.priority"],
        "columnsDisplayType": {f"tasks:data.{f}": "Number" for f in numeric},
    }


def project_title(cfg: EngineConfig) -> str:
    """The Label Studio project of this engine's dataset: ``review.project_title`` or a default."""
    return cfg.review.project_title or f"data-engine: {cfg.dataset.name}"


def dataset_classes(con: duckdb.DuckDBPyConnection, cfg: EngineConfig) -> list[str]:
    """The classes offered to reviewers: the warehouse's fixed classes, else the config's (none for a
    task without classes, such as regression)."""
    classes = load_classes(con) or list(cfg.dataset.classes or ())
    if not classes and task_for(cfg.dataset).has_classes:
        raise EngineError("review: the dataset's classes are not known yet; ingest a labeled batch first")
    return classes


def ensure_project(con: duckdb.DuckDBPyConnection, client: ReviewClient, cfg: EngineConfig) -> ProjectRef:
    """The dataset's project: the recorded one if the server still has it as recorded, else found by
    title, else created; recorded with its identity (see :mod:`data_engine.review.identity`), and its
    tasks and answers checked against the server (counts first: the tasks are listed only when the
    server has fewer than recorded). ``notices`` says what changed, one line each."""
    title = project_title(cfg)
    ref, notices = check_project(con, client, title)
    if ref is None:
        project_id = client.find_project(title)
        if project_id is None:
            xml = label_config(cfg.dataset, dataset_classes(con, cfg))
            project_id = client.create_project(
                title, xml, maximum_annotations=cfg.review.annotators_per_task,
                description=f"Examples of dataset {cfg.dataset.name!r} flagged by the data engine. Pick the correct "
                            f"class, or '{DISCARD_CHOICE}' to drop the example from training. Priority is on a "
                            f"0-1 scale, the same in every mining run; the view '{REVIEW_VIEW_TITLE}' lists what "
                            "is left, most urgent first.")
            client.create_view(project_id, review_view([f"{d}_score" for d in cfg.review.weights]))
        ref = record_project(con, client, title, cfg.dataset.name, project_id)
    if cfg.dataset.image_column:
        connect_images(con, client, ref.project_id)
    ref.notices = notices + reconcile_inventory(con, client, ref, only_if_fewer=True)
    return ref


def connect_images(con: duckdb.DuckDBPyConnection, client: ReviewClient, project_id: int) -> None:
    """Give the project a local-files storage of ``HOME/images``, so Label Studio serves the stored
    image files to its reviewers (the tasks link them; nothing is inlined or uploaded)."""
    from data_engine.store.images import IMAGES_DIR, warehouse_home

    home = warehouse_home(con)
    if home is None:
        raise EngineError("review of image files needs the warehouse file of an engine home")
    folder = home / IMAGES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    try:
        client.ensure_local_storage(project_id, str(folder))
    except ReviewServiceError as exc:
        if "HTTP 400" not in str(exc):
            raise
        # Label Studio answers a bare 400 for a folder outside its LOCAL_FILES_DOCUMENT_ROOT: a server started for
        # another home (a trial pointed a second home at the first's server and read only "HTTP 400").
        raise ReviewServiceError(
            f"{exc}. Label Studio serves image files only from under its document root "
            f"(LOCAL_FILES_DOCUMENT_ROOT), and {folder} is not under this server's: give this home its own server "
            "(another port in [review] url, then `data-engine labelstudio up`), or run one whose document root holds "
            "this home and set [review] local_files_root to that root") from None


def known_project(con: duckdb.DuckDBPyConnection, client: ReviewClient,
                  cfg: EngineConfig) -> tuple[ProjectRef | None, list[str]]:
    """The dataset's recorded project on ``client``'s server if it is still the one recorded, and the
    lines said. None before the first push, or when it is gone (a pull creates nothing: the next
    push does). Its tasks and answers are the caller's to check (:func:`reconcile_inventory`)."""
    ref, notices = check_project(con, client, project_title(cfg))
    return ref, notices


def latest_run_id(con: duckdb.DuckDBPyConnection) -> int | None:
    """The most recent mining run that has a review queue (None when there is no queue)."""
    # The schema (migration 0100) gives every mining run its finish time; an unfinished run sorts last.
    row = con.execute("SELECT m.run_id FROM mining_runs m WHERE EXISTS (SELECT 1 FROM review_queue q "
                      "WHERE q.run_id = m.run_id) ORDER BY m.finished_at DESC NULLS LAST, m.run_id DESC LIMIT 1").fetchall()
    if row:
        return int(row[0][0])
    # Mining numbers its runs (BIGINT); the latest is the highest.
    row = con.execute("SELECT max(run_id) FROM review_queue").fetchall()[0]
    return None if row[0] is None else int(row[0])


def reconcile_tasks(con: duckdb.DuckDBPyConnection, client: ReviewClient, ref: ProjectRef) -> int:
    """Match 'sending' rows (a push interrupted after its import) to tasks the server already has.

    Returns how many rows were matched. Costs one request, and only when 'sending' rows exist.
    """
    pending = con.execute("SELECT count(*) FROM review_tasks WHERE project_id = ? AND status = 'sending'",
                          [ref.key]).fetchall()[0][0]
    if not pending:
        return 0
    # Every task created by the interrupted import has a higher id than all recorded ones.
    floor = con.execute("SELECT coalesce(max(task_id), 0) FROM review_tasks WHERE project_id = ?",
                        [ref.key]).fetchall()[0][0]
    found = client.tasks_after(ref.project_id, int(floor))
    pairs = [(str(t["data"].get("engine_key")), int(t["id"])) for t in found if t["data"].get("engine_key")]
    if not pairs:
        return 0
    # The first task per key wins; a second one would be a duplicate made outside this engine.
    first: dict[str, int] = {}
    for key, tid in sorted(pairs, key=lambda p: p[1]):
        first.setdefault(key, tid)
    matches = pd.DataFrame({"engine_key": list(first), "task_id": list(first.values())})
    con.register("_reconciled", matches)
    try:
        n = con.execute(
            "UPDATE review_tasks SET task_id = r.task_id, status = 'open' FROM _reconciled r "
            "WHERE review_tasks.project_id = ? AND review_tasks.status = 'sending' "
            "AND review_tasks.engine_key = r.engine_key", [ref.key]).fetchall()[0][0]
    finally:
        con.unregister("_reconciled")
    return int(n)


def make_client(home: Home) -> ReviewClient:
    """The real client for ``home``: ``review.url``, the key from ``$review.api_key_env`` or the secrets dir."""
    from data_engine.review.labelstudio.client import LabelStudioClient
    from data_engine.review.labelstudio.server import resolve_api_key

    cfg = home.config.review
    return LabelStudioClient(cfg.url, resolve_api_key(home), timeout_s=cfg.timeout_seconds,
                             key_name=f"${cfg.api_key_env} (or {home.secrets}/labelstudio_token)")


def review_server(home: Home) -> str:
    """Make sure a Label Studio answers on ``review.url`` and say which one, in a few words.

    The home's own server is re-used (or started: :func:`~data_engine.review.labelstudio.server.ensure_server`);
    but when another one already answers ``/health`` there (started by another home, or by the
    user), it is used if it accepts the configured API key: starting one more would fail on the
    taken port. Raises :class:`EngineError` (one line) when the server there refuses the key; a port
    held by something that is not Label Studio is the start's one-line error.
    """
    from data_engine.review.labelstudio.server import ensure_server, health_ok, server_status

    own = server_status(home)
    url = home.config.review.url
    if not own.get("process_alive") and health_ok(url):
        client = None
        try:
            client = make_client(home)
            who = client.check()
        except ReviewServiceError as exc:
            raise EngineError(f"{exc} (a Label Studio this home did not start answers at {url}: use its API key, "
                              "or set review.url to another port)") from None
        finally:
            if client is not None:
                client.close()
        return f"{url} (already running, not this home's; used as {who})"
    info = ensure_server(home)
    return f"{info.url} ({'re-used' if info.reused else 'started'})"
