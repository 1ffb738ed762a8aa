"""The engine's own background services (Label Studio, Dask scheduler and workers): is a recorded
process still ours, and stopping it. Each is started in its own session, so its process group is
its whole tree."""

from __future__ import annotations

import os
import signal
import time


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (a zombie child of ours is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def runs_program(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker`` (a recycled pid must not be signalled)."""
    if not pid_alive(pid):
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return marker in fh.read()
    except OSError:
        return False


def stop_process_group(pid: int, wait_s: float) -> bool:
    """SIGTERM ``pid``'s process group, SIGKILL it after ``wait_s`` seconds; False if it was gone."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return False
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
