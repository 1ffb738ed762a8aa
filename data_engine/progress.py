"""Progress of long stages (embedding, out-of-fold fits, the neighbour search).

On a terminal a tqdm bar on stderr; otherwise (a pipe, a Dagster run step) the bar stays quiet and
the stage logs its start and end through :mod:`logging` (Dagster shows the engine's log lines in
the run's logs). tqdm is the well-kept library for the bar; only the log lines are ours.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger("data_engine.progress")


class Progress:
    """A counter of done units for one stage; :meth:`advance` moves it."""

    def __init__(self, bar: Any) -> None:
        self._bar = bar
        self.done = 0

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units done."""
        self.done += n
        if self._bar is not None:
            self._bar.update(n)


@contextmanager
def progress(description: str, total: int, *, unit: str = "rows") -> Iterator[Progress]:
    """A progress bar for ``total`` units of ``description`` (quiet when stderr is not a terminal)."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    log.info("%s: %d %s", description, total, unit)
    # disable=None: tqdm turns itself off when its stream is not a TTY.
    bar = tqdm(total=total, desc=description, unit=unit, disable=None, leave=False, dynamic_ncols=True)
    try:
        yield Progress(bar)
    finally:
        bar.close()
        log.info("%s: done in %.1f s", description, time.perf_counter() - started)
