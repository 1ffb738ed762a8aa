"""Security checks: services listen on 127.0.0.1 only; secrets never reach logs, Dagster metadata,
task data, tables or error messages; secret files are 0600; nothing is unpickled unless its sha256
matches a trusted record."""

from __future__ import annotations

import ast
import os
import pickle
import re
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_engine.review.labelstudio.server import PASSWORD_FILE, TOKEN_FILE, read_or_create_secret
from data_engine.store.cache import load_cache, save_cache
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.reliability.conftest import REPO

CODE_DIRS = ["data_engine", "assets", "sensors"]
# The only functions allowed to deserialise a model or cache file (each checks a sha256 first).
CHECKED_LOADERS = {"load_artifact", "load_cache"}
UNPICKLERS = {("joblib", "load"), ("pickle", "load"), ("pickle", "loads"), ("sio", "load"), ("sio", "loads"),
              ("cloudpickle", "load"), ("cloudpickle", "loads"), ("pd", "read_pickle"), ("dill", "load")}


def _listeners(port: int) -> set[str]:
    """Local addresses listening on TCP ``port`` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _, state = line.split()[1:4]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A = LISTEN
                found.add(addr)
    return found


LOOPBACK_V4 = "0100007F"


def _source_files() -> list[Path]:
    files = [REPO / "definitions.py"]
    for d in CODE_DIRS:
        files += sorted((REPO / d).rglob("*.py"))
    return files


def test_nothing_is_unpickled_outside_the_sha256_checked_loaders() -> None:
    offenders = []
    for path in _source_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for func in [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            for call in [n for n in ast.walk(func) if isinstance(n, ast.Call)]:
                f = call.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in UNPICKLERS:
                    if func.name not in CHECKED_LOADERS:
                        offenders.append(f"{path.relative_to(REPO)}:{call.lineno} {f.value.id}.{f.attr} in {func.name}")
                if any(k.arg == "allow_pickle" and getattr(k.value, "value", False) is True for k in call.keywords):
                    offenders.append(f"{path.relative_to(REPO)}:{call.lineno} allow_pickle=True")
    assert not offenders, offenders


class _Payload:
    """Unpickling this writes a marker file: proof that a replaced file was loaded."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path(self.marker).write_text, ("pwned",))


def test_a_replaced_cache_file_is_never_unpickled(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    home.make_dirs()
    path = home.models / "mining" / "full-x.joblib"
    save_cache(home, {"model": [1, 2, 3]}, path)
    assert load_cache(home, path) == {"model": [1, 2, 3]}
    assert stat.S_IMODE((home.secrets / "cache_key").stat().st_mode) == 0o600
    marker = tmp_path / "marker"
    path.write_bytes(pickle.dumps(_Payload(str(marker))))
    assert load_cache(home, path) is None and not marker.exists()
    # Replacing the digest too does not help without the home's key.
    import hashlib

    (path.parent / (path.name + ".sha256")).write_text(hashlib.sha256(path.read_bytes()).hexdigest())
    assert load_cache(home, path) is None and not marker.exists()


def test_no_service_or_script_binds_all_interfaces() -> None:
    hits = []
    for path in [*_source_files(), *sorted((REPO / "scripts").glob("*")), REPO / "Makefile"]:
        if path.is_file():
            for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
                if re.search(r"0\.0\.0\.0|host\s*=\s*['\"]::['\"]|--host[= ]+(?!127\.0\.0\.1)\S*\$", line):
                    hits.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert not hits, hits
    # Each service command in the scripts names the loopback interface.
    for path in sorted((REPO / "scripts").glob("*.sh")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.search(r"dagster(-webserver)? (dev|run)\b|dagster-webserver\b", line) and not line.lstrip().startswith("#"):
                assert "-h 127.0.0.1" in line or "--host 127.0.0.1" in line, f"{path.name}: {line}"


@pytest.mark.timeout(300)
def test_the_model_server_listens_on_loopback_only(tmp_path: Path) -> None:
    from data_engine.ship import deploy
    from data_engine.ship.training import train_candidate
    from tests.loop_support import make_home

    home = make_home(tmp_path, seed=0, n_train=150, n_gold=40, n_unlabeled=0)
    with open_warehouse(home) as con:
        deploy.promote(con, home, train_candidate(con, home).record.version, reason="bind check")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "data_engine.cli", "--home", str(home.root), "serve", "--port",
                             str(port)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not _listeners(port) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert _listeners(port) == {LOOPBACK_V4}, _listeners(port)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.integration
def test_label_studio_listens_on_loopback_and_its_secret_files_are_private(label_studio) -> None:
    assert _listeners(label_studio.info.port) == {LOOPBACK_V4}
    assert stat.S_IMODE(label_studio.secrets_dir.stat().st_mode) == 0o700
    for f in label_studio.secrets_dir.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    assert stat.S_IMODE(label_studio.data_dir.stat().st_mode) == 0o700


def test_a_loose_token_file_is_made_private_when_read(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / TOKEN_FILE
    path.parent.mkdir()
    path.write_text("abc123\n")
    os.chmod(path, 0o644)
    assert read_or_create_secret(path) == "abc123"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    fresh = read_or_create_secret(tmp_path / "secrets" / "new")
    assert len(fresh) == 40 and stat.S_IMODE((tmp_path / "secrets" / "new").stat().st_mode) == 0o600


@pytest.mark.integration
@pytest.mark.timeout(600)
def test_secrets_never_reach_logs_metadata_task_data_tables_or_errors(review_home, label_studio, capsys,
                                                                      monkeypatch) -> None:
    import dagster as dg

    from assets.resources import EngineResource, LabelStudioResource
    from assets.review import review_tasks, review_verdicts
    from data_engine.cli import main as cli_main
    from data_engine.review.labelstudio.client import LabelStudioClient

    token = label_studio.token
    password = (label_studio.secrets_dir / PASSWORD_FILE).read_text(encoding="utf-8").strip()
    secrets_ = [token, password]
    home, _ = review_home(n=6)
    base = ["--home", str(home.root)]
    outputs = []
    for args in (["review", "push"], ["review", "simulate", "--accuracy", "1.0"], ["review", "pull", "--json"],
                 ["review", "status", "--json"], ["status", "--json"]):
        assert cli_main([*base, *args]) == 0, args
        captured = capsys.readouterr()
        outputs += [captured.out, captured.err]
    # Failures: a wrong key (its value must not be echoed) and an unreachable server.
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "wrong-" + token[:10])
    assert cli_main([*base, "review", "pull"]) == 2
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err]
    assert "wrong-" not in captured.err and "LABEL_STUDIO_API_KEY" in captured.err
    monkeypatch.delenv("LABEL_STUDIO_API_KEY")
    # Dagster: the review assets run with the key from a resource; their metadata and logs are kept.
    instance = dg.DagsterInstance.ephemeral()
    resources = {"engine": EngineResource(home=str(home.root)), "label_studio": LabelStudioResource(api_key=token)}
    for asset in (review_tasks, review_verdicts):
        result = dg.materialize([asset], instance=instance, resources=resources)
        assert result.success
    # Every event of the runs: logs, materializations with their metadata, step outputs.
    events = [e for run in instance.get_runs() for e in instance.all_logs(run.run_id)]
    assert any(e.dagster_event and e.dagster_event.is_step_materialization for e in events)
    outputs += [str(e) for e in events]
    # Tables: every text cell of every table.
    with open_warehouse(home, read_only=True) as con:
        for (table,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall():
            outputs.append(str(con.execute(f'SELECT * FROM "{table}"').fetchall()))
    # Task data and annotations on the server, and the server's own log.
    client = LabelStudioClient(label_studio.url, token)
    pid = client.find_project(home.config.review.project_title)
    outputs.append(str(client.tasks_after(pid, 0)) + str(client.annotated_tasks(pid, None)))
    client.close()
    outputs += [p.read_text(encoding="utf-8", errors="replace") for p in label_studio.data_dir.rglob("*.log")]
    outputs += [p.read_text(encoding="utf-8", errors="replace") for p in home.root.rglob("*")
                if p.is_file() and p.suffix in (".log", ".json", ".toml", ".csv") and "secrets" not in p.parts]
    blob = "\n".join(outputs)
    assert len(blob) > 10_000  # there is something to search
    for secret in secrets_:
        assert secret not in blob
