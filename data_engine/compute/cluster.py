"""A Dask cluster on this machine for trying the distributed back-end: ``data-engine compute up|down|status``.

One scheduler and N workers, each a separate process (dask.distributed's own ``dask scheduler`` /
``dask worker`` programs run with this Python), all bound to 127.0.0.1, with their pid files,
logs and the scheduler file in ``HOME/compute/``. Each worker has one thread and native libraries
capped at one thread: the engine's parallelism is over tasks, not inside them. A real cluster is
started by a cluster manager instead (see docs/deployment.md); the engine only needs its address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from data_engine.errors import EngineError
from data_engine.processes import runs_program, stop_process_group
from data_engine.store.home import Home

LOOPBACK = "127.0.0.1"
DEFAULT_PORT = 8786
SCHEDULER_FILE = "scheduler.json"
START_WAIT_S = 60.0
STOP_WAIT_S = 10.0
# A thread per native library per worker: two workers on two cores must not start four threads each.
_ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


@dataclass(frozen=True)
class ClusterStatus:
    """What ``compute status`` prints."""

    address: str | None
    scheduler_pid: int | None
    worker_pids: tuple[int, ...]
    workers_connected: int | None

    @property
    def running(self) -> bool:
        return self.scheduler_pid is not None


def compute_dir(home: Home) -> Path:
    """``HOME/compute``: pid files, logs, the scheduler file, workers' scratch space."""
    return home.root / "compute"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _spawn(argv: list[str], log_path: Path, pid_path: Path) -> int:
    env = {**os.environ, **_ONE_THREAD, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            cwd=log_path.parent,
            # Its own session: Ctrl-C in the caller's terminal does not reach it.
            start_new_session=True,
        )
    pid_path.write_text(f"{proc.pid}\n", encoding="utf-8")
    return proc.pid


def start_cluster(home: Home, *, workers: int = 2, port: int = DEFAULT_PORT,
                  wait_s: float = START_WAIT_S) -> str:
    """Start a scheduler on 127.0.0.1:``port`` (0: any free port) and ``workers`` workers.

    Returns the scheduler address ``tcp://127.0.0.1:PORT`` once all workers have joined. A cluster
    already running for this home is an error (stop it with :func:`stop_cluster`). Raises
    :class:`EngineError` naming the log file when a process does not come up.
    """
    if workers < 1:
        raise EngineError(f"--workers must be at least 1, got {workers}")
    current = cluster_status(home)
    if current.running:
        raise EngineError(f"a Dask cluster already runs for this home at {current.address}; "
                          f"`data-engine compute down` stops it")
    root = compute_dir(home)
    root.mkdir(parents=True, exist_ok=True)
    for stale in [*root.glob("*.pid"), root / SCHEDULER_FILE]:
        stale.unlink(missing_ok=True)
    port = port or _free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if sock.connect_ex((LOOPBACK, port)) == 0:
            raise EngineError(f"cannot start the Dask scheduler: port {port} on {LOOPBACK} is in use; "
                              f"pass --port 0 for a free one")
    address = f"tcp://{LOOPBACK}:{port}"
    py = sys.executable
    _spawn([py, "-m", "distributed.cli.dask_scheduler", "--host", LOOPBACK, "--port", str(port),
            "--no-dashboard", "--scheduler-file", str(root / SCHEDULER_FILE)],
           root / "scheduler.log", root / "scheduler.pid")
    _wait_for(lambda: (root / SCHEDULER_FILE).exists(), wait_s, home, "scheduler.log")
    for i in range(workers):
        name = f"worker-{i}"
        (root / name).mkdir(exist_ok=True)
        # --no-nanny: one process per worker (a cluster manager restarts failed workers in production).
        _spawn([py, "-m", "distributed.cli.dask_worker", address, "--name", name, "--host", LOOPBACK,
                "--nthreads", "1", "--no-nanny", "--no-dashboard", "--local-directory", str(root / name)],
               root / f"{name}.log", root / f"{name}.pid")
    _wait_for(lambda: (cluster_status(home).workers_connected or 0) >= workers, wait_s, home, "worker-*.log")
    return address


def _wait_for(ready, wait_s: float, home: Home, log_name: str) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.3)
    stop_cluster(home)
    raise EngineError(f"the Dask cluster did not come up within {wait_s:.0f} s; see "
                      f"{compute_dir(home) / log_name}")


def cluster_status(home: Home) -> ClusterStatus:
    """The home's cluster: its address, live processes and the workers the scheduler knows."""
    root = compute_dir(home)
    scheduler = _live_pid(root / "scheduler.pid")
    workers = tuple(p for p in (_live_pid(f) for f in sorted(root.glob("worker-*.pid"))) if p is not None)
    address = None
    connected = None
    if scheduler is not None:
        try:
            address = json.loads((root / SCHEDULER_FILE).read_text(encoding="utf-8"))["address"]
        except (OSError, ValueError, KeyError):
            address = None
        if address:
            connected = _connected_workers(address)
    return ClusterStatus(address, scheduler, workers, connected)


def _connected_workers(address: str) -> int | None:
    """Workers the scheduler at ``address`` knows, or None if it does not answer."""
    from distributed import Client

    try:
        with Client(address, timeout=5, set_as_default=False) as client:
            return len(client.scheduler_info().get("workers", {}))
    except (OSError, TimeoutError):
        return None


def stop_cluster(home: Home) -> int:
    """Stop the home's workers, then its scheduler (SIGTERM, SIGKILL after a wait).

    Returns the number of processes stopped.
    """
    root = compute_dir(home)
    stopped = 0
    for pid_file in [*sorted(root.glob("worker-*.pid")), root / "scheduler.pid"]:
        pid = _live_pid(pid_file)
        if pid is not None and stop_process_group(pid, STOP_WAIT_S):
            stopped += 1
        pid_file.unlink(missing_ok=True)
    (root / SCHEDULER_FILE).unlink(missing_ok=True)
    return stopped


def _live_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive and is one of dask.distributed's programs."""
    try:
        pid = int(pid_file.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return pid if runs_program(pid, b"distributed.cli.dask_") else None
