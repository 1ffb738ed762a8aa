"""Stopping one of the engine's services waits for its whole process group, not only its leader."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_engine.processes import group_alive, pid_alive, runs_program, stop_process_group
from tests.process_programs import LEADER_THREAD_GONE, wait_for_zombie_leader

# The leader exits on SIGTERM at once; its child, like a server's worker still closing its
# connections, takes a second longer.
LEADER = """
import os, signal, sys, time
child = os.fork()
if child == 0:
    signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1.0), os._exit(0)))
    open(sys.argv[1], "w").close()
    while True:
        time.sleep(0.05)
while True:
    time.sleep(0.05)
"""


def test_stop_waits_for_the_leaders_children(tmp_path):
    ready = tmp_path / "child-ready"
    leader = subprocess.Popen([sys.executable, "-c", LEADER, str(ready)], start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists() and group_alive(leader.pid)
        started = time.monotonic()
        assert stop_process_group(leader.pid, wait_s=10.0)
        assert not group_alive(leader.pid)
        assert time.monotonic() - started >= 0.9  # it waited for the child's second
    finally:
        leader.wait(timeout=10)


def test_a_group_that_ignores_sigterm_is_killed_within_the_wait(tmp_path):
    leader = subprocess.Popen([sys.executable, "-c", "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                               "print('ready', flush=True)\ntime.sleep(60)"], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert leader.stdout.readline().strip() == "ready"
        started = time.monotonic()
        assert stop_process_group(leader.pid, wait_s=1.0)
        assert not group_alive(leader.pid)
        assert time.monotonic() - started < 10
    finally:
        leader.wait(timeout=10)


def test_a_gone_group_is_not_alive():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          start_new_session=True, check=True)
    assert not group_alive(int(done.stdout))
    assert stop_process_group(int(done.stdout), wait_s=1.0) is False


def test_a_zombie_child_is_dead_and_its_group_gone(tmp_path):
    # A program name with spaces and a ")" (the kernel names a process after the file it ran) must
    # not shift the fields read after it, and one cut to 15 bytes inside a UTF-8 character must read.
    program = tmp_path / "odd ) nameééé"
    program.symlink_to(shutil.which("sleep"))
    child = subprocess.Popen([str(program), "30"], start_new_session=True)
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        deadline = time.monotonic() + 10
        while b"odd ) name" not in stat.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b"(odd ) name" + "éé".encode() + b"\xc3) " in stat.read_bytes()  # cut inside the third
        assert pid_alive(child.pid) and group_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        # Not yet waited for: a zombie, still listed by the kernel, dead for the engine.
        assert not pid_alive(child.pid)
        assert not group_alive(child.pid)
    finally:
        child.kill()
        child.wait()
    assert not pid_alive(child.pid)


def test_a_zombie_leader_with_a_live_thread_is_alive_until_its_socket_closes():
    server = subprocess.Popen([sys.executable, "-c", LEADER_THREAD_GONE, "marker-7d1f"], start_new_session=True,
                              stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline())
        assert wait_for_zombie_leader(server.pid)  # the leader thread alone reads as a zombie
        assert Path(f"/proc/{server.pid}/cmdline").read_bytes() == b""  # and its command line is gone
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # ...yet its port still accepts
        assert pid_alive(server.pid) and group_alive(server.pid)
        assert runs_program(server.pid, b"marker-7d1f") and not runs_program(server.pid, b"marker-other")
        assert stop_process_group(server.pid, wait_s=10.0)
        assert not pid_alive(server.pid) and not group_alive(server.pid)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        server.kill()
        server.wait(timeout=10)
