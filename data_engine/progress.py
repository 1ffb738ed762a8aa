"""Progress of long stages (embedding, out-of-fold fits, the neighbour search).

On a terminal a tqdm bar on stderr; otherwise (a pipe, a Dagster run step) the bar stays quiet and
the stage logs its start, how far it got every 30 s, and its end through :mod:`logging` (Dagster
shows the engine's log lines in the run's logs). tqdm is the well-kept library for the bar; only the log lines are ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("data_engine.progress")


# Without a terminal, a stage still says how far it got this often: a 100,000-task push runs
# for ten minutes, and start and end lines alone look like a hang in a run's logs.
LOG_EVERY_S = 30.0


class Progress:
    """A counter of done units for one stage; :meth:`advance` moves it."""

    def __init__(self, bar: Any, description: str = "", total: int = 0, unit: str = "rows",
                 every_s: float | None = None) -> None:
        self._bar = bar
        self.done = 0
        self._what = (description, total, unit)
        self._every_s = LOG_EVERY_S if every_s is None else every_s
        self._next_log = time.monotonic() + self._every_s

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done (a log line at most every ``every_s`` seconds when there is no bar)."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        if self._bar is None or getattr(self._bar, "disable", False):
            now = time.monotonic()
            if now >= self._next_log:
                description, total, unit = self._what
                log.info("%s: %d/%d %s", description, self.done, total, unit)
                self._next_log = now + self._every_s


@contextmanager
def progress(description: str, total: int, *, unit: str = "rows") -> Iterator[Progress]:
    """A progress bar for ``total`` units of ``description`` (quiet when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    log.info("%s: %d %s", description, total, unit)
    # disable=None: tqdm turns itself off when its stream is not a TTY.
    bar = tqdm(total=total, desc=description, unit=unit, disable=None, leave=False, dynamic_ncols=True)
    try:
        yield Progress(bar, description, total, unit)
    finally:
        bar.close()
        log.info("%s: done in %.1f s", description, time.perf_counter() - started)
