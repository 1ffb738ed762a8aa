"""Small programs the process tests start: services that stop in the awkward ways real ones do."""

from __future__ import annotations

import time
from pathlib import Path

# The leader thread ends (pthread_exit) while another thread keeps the listening socket open: the
# kernel then shows the leader as a zombie, as it does while a killed server's threads still exit.
# It prints its port. With ``ignore-term`` as an argument it ignores SIGTERM (the whole process);
# other arguments only mark its command line.
LEADER_THREAD_GONE = """
import ctypes, signal, socket, sys, threading, time
if "ignore-term" in sys.argv[1:]:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
threading.Thread(target=time.sleep, args=(60,)).start()
print(listener.getsockname()[1], flush=True)
ctypes.CDLL(None).pthread_exit(None)
"""


def wait_for_zombie_leader(pid: int, timeout_s: float = 10.0) -> bool:
    """Wait until ``/proc/PID/stat`` (the leader thread alone) reads as a zombie; whether it did."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout_s
    while b") Z" not in stat.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.05)
    return b") Z" in stat.read_bytes()
