"""The services on a real PostgreSQL, started by the project's own scripts/postgres.sh (which installs
Debian's postgresql when it is missing): Dagster's runs are recorded there, and Label Studio serves a
project from it."""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from data_engine.review.labelstudio.server import ensure_server, free_port, read_token, stop_server
from data_engine.store.home import Home
from data_engine.store.services_db import labelstudio_db_env, postgres_server
from tests.conftest import TOY_CONFIG
from tests.homes import make_home

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "postgres.sh"


def pg(home: Home, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA_ENGINE_HOME": str(home.root)}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def pg_home() -> Iterator[Home]:
    """An engine home whose services database is a PostgreSQL cluster in it, on a free port."""
    # As root the server runs as the `postgres` user, which must be able to reach the home:
    # pytest's own temp dirs are private (0700), so this one is made traversable (0711).
    with tempfile.TemporaryDirectory(prefix="engine-pg-") as tmp:
        os.chmod(tmp, 0o711)
        home = make_home(Path(tmp), TOY_CONFIG + f'\n[review]\nurl = "http://127.0.0.1:{free_port()}"\n')
        os.environ["DATA_ENGINE_PG_PORT"] = str(free_port())
        try:
            up = pg(home, "up")
            assert up.returncode == 0, up.stderr
            yield home
        finally:
            os.environ.pop("DATA_ENGINE_PG_PORT", None)
            stop_server(home)
            down = pg(home, "down")
            assert down.returncode == 0, down.stderr


def query(home: Home, database: str, sql: str, params: tuple = ()) -> list[tuple]:
    import psycopg

    server = postgres_server(home)
    with psycopg.connect(host=server.host, port=server.port, user=server.user, password=server.password,
                         dbname=database) as con:
        return con.execute(sql, params).fetchall()


def test_the_cluster_is_on_loopback_with_a_private_password(pg_home: Home) -> None:
    server = postgres_server(pg_home)
    assert server is not None and server.host == "127.0.0.1"
    assert "***" in repr(server) and server.password not in repr(server)
    secret = pg_home.secrets / "postgres_password"
    assert secret.stat().st_mode & 0o777 == 0o600
    assert query(pg_home, "postgres", "SHOW listen_addresses") == [("127.0.0.1",)]
    assert pg(pg_home, "status").returncode == 0
    again = pg(pg_home, "up")  # idempotent: a running, initialised cluster is left as it is
    assert again.returncode == 0, again.stderr


def test_dagster_records_its_runs_in_postgres(pg_home: Home, tmp_path: Path, monkeypatch) -> None:
    import dagster as dg

    # The instance config `make up` writes: the engine's dagster.yaml plus the PostgreSQL storage.
    (tmp_path / "dagster.yaml").write_text((REPO / "scripts" / "dagster.yaml").read_text()
                                           + (REPO / "scripts" / "dagster-postgres.yaml").read_text())
    env = pg(pg_home, "env")
    assert env.returncode == 0, env.stderr
    for line in env.stdout.splitlines():
        for pair in shlex.split(line.removeprefix("export ")):
            key, value = pair.split("=", 1)
            monkeypatch.setenv(key, value)

    @dg.op
    def add_one() -> int:
        return 1

    @dg.job
    def tiny_job() -> None:
        add_one()

    instance = dg.DagsterInstance.from_config(str(tmp_path))
    try:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = tiny_job.execute_in_process(instance=instance)
        assert result.success
    finally:
        instance.dispose()
    rows = query(pg_home, "dagster", "SELECT pipeline_name, status FROM runs WHERE run_id = %s", (result.run_id,))
    assert rows == [("tiny_job", "SUCCESS")]
    events = query(pg_home, "dagster", "SELECT count(*) FROM event_logs WHERE run_id = %s", (result.run_id,))
    assert events[0][0] > 0


def test_label_studio_serves_a_project_from_postgres(pg_home: Home) -> None:
    from label_studio_sdk import LabelStudio

    assert labelstudio_db_env(pg_home)["DJANGO_DB"] == "default"
    info = ensure_server(pg_home, wait_s=600)
    client = LabelStudio(base_url=info.url, api_key=read_token(pg_home))
    title = f"pg-{uuid.uuid4().hex[:8]}"
    project = client.projects.create(title=title, label_config='<View><Text name="t" value="$text"/>'
                                     '<Choices name="c" toName="t"><Choice value="a"/></Choices></View>')
    client.projects.import_tasks(id=project.id, request=[{"text": "hello"}, {"text": "world"}])
    assert client.projects.get(id=project.id).title == title
    assert query(pg_home, "labelstudio", "SELECT id FROM project WHERE title = %s", (title,)) == [(project.id,)]
    assert query(pg_home, "labelstudio", "SELECT count(*) FROM task WHERE project_id = %s", (project.id,)) == [(2,)]
    # Nothing went to a SQLite file of its own.
    assert not list(pg_home.labelstudio_dir.glob("*.sqlite3"))
