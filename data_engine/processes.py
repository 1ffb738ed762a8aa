"""The engine's own background services (Label Studio, Dask scheduler and workers): is a recorded
process still ours, and stopping it. Each is started in its own session, so its process group is
its whole tree."""

from __future__ import annotations

import os
import signal
import time


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and one of its threads is not a zombie (a zombie child of
    ours is dead for our purposes)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _running(pid) is not False


def _running(pid: int | str) -> bool | None:
    """Whether any thread of process ``pid`` is not a zombie; None when ``/proc`` cannot tell.

    Every thread counts, not only the leader's ``/proc/PID/stat``: when a process is killed its
    leader thread can show as a zombie while its other threads still exit, and they share its open
    files, so its listening socket still accepts connections (and cuts them off) until the last
    thread is gone."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    states = [_stat(f"{pid}/task/{tid}") for tid in tasks]
    known = [state for state in states if state is not None]
    if not known:
        return None
    return any(state[0] not in "ZX" for state in known)


def _stat(pid: int | str) -> tuple[str, int] | None:
    """The state letter and the process group of ``/proc/{pid}/stat`` (fields 3 and 5; the command
    name before them may hold spaces and brackets, so the fields are counted from its last ")");
    ``pid`` may be ``PID/task/TID`` for one thread. None when it cannot be read (the process has
    gone, or no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            # Bytes: the kernel cuts a command name to 15 bytes, maybe inside a UTF-8 character.
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return fields[0].decode("ascii"), int(fields[2])


def runs_program(pid: int, marker: bytes) -> bool:
    """Whether ``pid`` is alive and its command line contains ``marker`` (a recycled pid must not be signalled)."""
    if not pid_alive(pid):
        return False
    # The process's own cmdline is empty once its leader thread is a zombie (it no longer has the
    # memory the line is read from); each live thread's still gives it.
    try:
        threads = [""] + [f"/task/{tid}" for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return False
    for thread in threads:
        try:
            with open(f"/proc/{pid}{thread}/cmdline", "rb") as fh:
                line = fh.read()
        except OSError:
            continue
        if line:
            return marker in line
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
    # Wait for the whole group, not only its leader: a server's worker processes may hold the
    # listening socket after the leader exits, and a client connecting then is accepted and cut off
    # ("closed without an answer") instead of refused, and a restart on the port finds it taken.
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + wait_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return True


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` has a thread that is not a zombie (read from ``/proc``)."""
    # Neither os nor psutil lists a group's members; a process's group is field 5 of its /proc stat.
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    for entry in os.scandir("/proc"):
        state = _stat(entry.name) if entry.name.isdigit() else None
        if state is not None and state[1] == pgid:
            running = _running(entry.name)
            # Gone between the two reads (None): its own state, read a moment before, decides.
            if running or (running is None and state[0] not in "ZX"):
                return True
    return False
