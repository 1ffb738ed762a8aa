"""Wall time and peak memory per stage of a long computation (mining, benchmarks).

Memory is the resident set size of this process plus its child processes (joblib's fold
workers), sampled from ``/proc`` by a background thread: peak RSS over a stage is what decides
whether a run fits the machine. Where ``/proc`` is missing only time is recorded.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

# Sampling period of the memory thread; short stages may miss a brief peak, long ones will not.
SAMPLE_SECONDS = 0.2
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def tree_rss_bytes(pid: int | None = None) -> int | None:
    """Resident bytes of process ``pid`` (default: this one) and all its descendants; None without /proc."""
    found = tree_rss(pid)
    return None if found is None else found[0]


def tree_rss(pid: int | None = None) -> tuple[int, int] | None:
    """Resident bytes of process ``pid`` (default: this one) and all its descendants, and of the
    largest single process among them; None without /proc."""
    root = pid or os.getpid()
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        # The command name in field 2 may contain spaces; fields after its closing ')' are fixed.
        fields = stat[stat.rfind(")") + 2:].split()
        parent[int(entry.name)] = int(fields[1])
        rss[int(entry.name)] = int(statm[1]) * _PAGE
    total, largest, todo = 0, 0, [root]
    children: dict[int, list[int]] = {}
    for p, pp in parent.items():
        children.setdefault(pp, []).append(p)
    while todo:
        p = todo.pop()
        total += rss.get(p, 0)
        largest = max(largest, rss.get(p, 0))
        todo.extend(children.get(p, []))
    return total, largest


@dataclass
class StageClock:
    """Records seconds and (when ``track_memory``) peak RSS in MiB for named stages.

    ``peak_mib``: all processes counted (see ``with_children``); ``peak_largest_mib``: the largest
    single process of them (a worker or this one), what must fit one process's share of memory."""

    track_memory: bool = False
    # False: this process alone (a benchmark whose child is a server it started, not its own work).
    with_children: bool = True
    seconds: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    peak_largest_mib: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the block as stage ``name`` (repeated names add up; peaks take the max)."""
        peak = [0, 0]
        stop = threading.Event()
        sampler = None
        if self.track_memory:
            def sample() -> None:
                while True:
                    self._sample(peak)
                    if stop.wait(SAMPLE_SECONDS):
                        return
            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
            if sampler is not None:
                stop.set()
                sampler.join()
                self._sample(peak)
                self.peak_mib[name] = max(self.peak_mib.get(name, 0.0), peak[0] / 2**20)
                self.peak_largest_mib[name] = max(self.peak_largest_mib.get(name, 0.0), peak[1] / 2**20)

    def _sample(self, peak: list[int]) -> None:
        """Raise ``peak`` ([all processes, largest process], bytes) to the resident sizes now."""
        if self.with_children:
            found = tree_rss()
        else:
            own = self.rss_bytes()
            found = None if own is None else (own, own)
        if found is not None:
            peak[0], peak[1] = max(peak[0], found[0]), max(peak[1], found[1])

    def rss_bytes(self) -> int | None:
        """Resident bytes now, as the peaks count them (None without /proc)."""
        if self.with_children:
            return tree_rss_bytes()
        try:
            return int(Path("/proc/self/statm").read_text().split()[1]) * _PAGE
        except OSError:
            return None

    @property
    def total_seconds(self) -> float:
        """Sum of all stages."""
        return float(sum(self.seconds.values()))


# Blocks of this size or more are mapped on their own by glibc's malloc (see map_large_blocks).
MMAP_THRESHOLD_BYTES = 1 << 20
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, <malloc.h>


def map_large_blocks(threshold: int = MMAP_THRESHOLD_BYTES) -> bool:
    """Have glibc's malloc map every block of ``threshold`` bytes or more on its own, so that
    freeing it returns its memory to the system at once; True if set, False where the C library is
    not glibc (musl, macOS: nothing is changed). Applies to the whole process from then on.

    glibc raises this threshold to the size of each mapped block freed, up to 32 MiB (its "dynamic
    mmap threshold", mallopt(3)): after the first large array is freed, numpy arrays of a few MB
    (a million rows' column) are carved from the heap, whose freed holes stay resident while
    anything above them lives. Mining 200,000 rows, the largest process ended the neighbour stage
    at 726 MiB with the dynamic threshold and 605 MiB with a fixed 1 MiB one (docs/mining.md).
    Setting the threshold through mallopt is glibc's documented way to turn the adjustment off.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library this process already runs on
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold))


def release_arrow_memory() -> None:
    """Give the memory pyarrow's default pool holds but no longer uses back to the system
    (``MemoryPool.release_unused``); nothing without pyarrow.

    pandas keeps its string columns in pyarrow buffers; the pool (mimalloc or jemalloc) keeps freed
    pages for reuse, so a million rows' per-example detail strings stayed resident after the frame
    holding them was dropped (docs/mining.md)."""
    try:
        import pyarrow
    except ImportError:
        return
    pyarrow.default_memory_pool().release_unused()
