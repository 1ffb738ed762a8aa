"""Where the heavy, independent pieces of mining run: this machine's process pool or a Dask cluster.

``[compute] scheduler = "local"`` maps calls over joblib worker processes (``[mining] n_jobs``);
``scheduler = "tcp://host:8786"`` submits them as dask.distributed tasks to that scheduler's
workers. Both run the same pure function on the same arguments, so the results are the same (the
callers fix folds and seeds before mapping; nothing random is drawn inside a call).

Only arrays and estimators travel to the workers, never the warehouse: DuckDB stays the single
writer on the host that runs the engine.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from data_engine.errors import EngineError
from data_engine.store.config import LOCAL_SCHEDULER, check_scheduler

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")
LOCAL = LOCAL_SCHEDULER
# Seconds to wait for the scheduler to answer and for its first worker to join.
CONNECT_TIMEOUT_S = 30.0


class LazyCalls(Sequence[tuple[Any, ...]]):
    """``n`` call argument tuples made on demand by ``make(i)``, so that a back-end holds only the
    calls in flight, not all of them: a fold fit's rows are a copy of its share of the table, and ten
    such copies at once were most of mining's memory at a million rows (docs/mining.md)."""

    def __init__(self, n: int, make: Callable[[int], tuple[Any, ...]]) -> None:
        self._n, self._make = int(n), make

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self._make(j) for j in range(*i.indices(self._n))]
        if not -self._n <= i < self._n:
            raise IndexError(i)
        return self._make(i % self._n)


class Backend(ABC):
    """Runs independent calls of one pure function and returns their results in call order."""

    #: Calls that can run at the same time (processes locally, worker threads on a cluster).
    slots: int = 1

    def starmap(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]], *, description: str | None = None,
                unit: str = "tasks") -> list[T]:
        """``[fn(*args) for args in calls]``, computed in parallel; exceptions propagate.

        ``fn`` must be importable by name (a module-level function) so that worker processes
        can unpickle it; the arguments are pickled once per call. With a ``description`` the
        calls are counted on a progress bar (:mod:`data_engine.progress`) as they finish.
        """
        from data_engine.progress import progress

        if description is None:
            return list(self._results(fn, calls))
        out: list[T] = []
        with progress(description, len(calls), unit=unit) as bar:
            for result in self._results(fn, calls):
                out.append(result)
                bar.advance()
        return out

    @abstractmethod
    def _results(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        """The results of the calls, in call order, each as soon as it and those before it are done."""

    def map_batches(self, fn: Callable[[Any], "np.ndarray"], data: Any, *, batch_rows: int) -> "np.ndarray":
        """Apply ``fn`` to consecutive batches of ``batch_rows`` rows of ``data`` and stack the results.

        ``data``: a sequence, a NumPy array or a pandas DataFrame of N rows; ``fn`` maps a batch
        of n rows to an array of n rows (e.g. an embedding, shape (n, D)). Returns shape (N, ...),
        rows in the order of ``data``. Raises :class:`EngineError` if a batch's result has the
        wrong number of rows.
        """
        import numpy as np  # here, not at import: the config module imports this one

        if batch_rows < 1:
            raise EngineError(f"batch_rows must be at least 1, got {batch_rows}")
        n = len(data)
        take = data.iloc if hasattr(data, "iloc") else data
        batches = [take[lo:lo + batch_rows] for lo in range(0, n, batch_rows)]
        parts = self.starmap(fn, [(b,) for b in batches])
        for lo, batch, part in zip(range(0, n, batch_rows), batches, parts):
            if len(part) != len(batch):
                raise EngineError(f"{getattr(fn, '__name__', fn)!s} returned {len(part)} rows for the "
                                  f"{len(batch)} rows starting at row {lo}")
        return np.concatenate(parts) if parts else np.empty((0,))

    def close(self) -> None:
        """Release connections (nothing for the local pool)."""

    def describe(self) -> str:
        """One line for logs and metadata."""
        return f"{type(self).__name__}({self.slots} slots)"


class LocalBackend(Backend):
    """joblib worker processes on this machine (``n_jobs`` of them; 1 runs calls in this process)."""

    def __init__(self, n_jobs: int = 1) -> None:
        self.slots = max(1, int(n_jobs))

    def _results(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        if self.slots == 1 or len(calls) <= 1:
            return (fn(*args) for args in calls)
        return self._pooled(fn, calls)

    def _pooled(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        """The calls on joblib's worker processes, each with its temporary files in one folder of this
        process's, removed when the calls are done or one failed.

        On the first failed call joblib kills the other workers (loky's ``terminate(kill_workers=True)``),
        so a call's own clean-up never runs: a user trainer's ``trainer-fit-*`` / ``trainer-predict-*``
        folder (:mod:`data_engine.trainers.command`) stayed in the temporary directory after each such
        failure. This process outlives its workers, so it removes what they leave."""
        import shutil
        import tempfile

        from joblib import Parallel, delayed

        scratch = tempfile.mkdtemp(prefix="engine-pool-")
        try:
            # pre_dispatch = n_jobs: a call's arguments (a fold's rows) are made and pickled when a
            # worker is free for it, not one round ahead (joblib's default, 2 * n_jobs in flight).
            n = min(self.slots, len(calls))
            yield from Parallel(n_jobs=n, pre_dispatch=str(n), return_as="generator")(
                delayed(_with_temp_dir)(scratch, fn, args) for args in calls)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def close(self) -> None:
        """Stop joblib's worker processes (loky's reusable pool, started by the calls above).

        An idle worker keeps the memory of its last fit (hundreds of MiB after a fold of a large
        table); without this they stayed until loky's idle timeout (300 s), counted in the later stages' peaks.
        The next parallel call starts new ones (a second or two)."""
        if self.slots > 1:
            from joblib.externals.loky import get_reusable_executor

            get_reusable_executor().shutdown(wait=True)

    def describe(self) -> str:
        return f"local ({self.slots} processes)"


def _with_temp_dir(folder: str, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """``fn(*args)`` in a worker process with ``folder`` as the default of :mod:`tempfile` (a worker
    runs one call at a time, so the process-wide default is this call's alone while it runs)."""
    import tempfile

    before = tempfile.tempdir
    tempfile.tempdir = folder
    try:
        return fn(*args)
    finally:
        tempfile.tempdir = before


class DaskBackend(Backend):
    """Tasks on a dask.distributed cluster, through a connected ``distributed.Client``.

    Each call's arguments are scattered to the workers first (spread over them; straight to them
    when Dask's ``distributed.client.direct-to-workers`` is set, else through the scheduler), then
    one task per call runs next to its data; results are gathered in call order.
    """

    def __init__(self, client: Any, *, owns_client: bool = False) -> None:
        self.client = client
        self._owns = owns_client
        workers = client.scheduler_info().get("workers", {})
        self.slots = max(1, sum(int(w.get("nthreads", 1)) for w in workers.values()))

    def _results(self, fn: Callable[..., T], calls: Sequence[tuple[Any, ...]]) -> Iterator[T]:
        if not calls:
            return
        # hash=False: tokenising every argument (whole DataFrames) costs more than it saves. A group
        # of `slots` calls at a time (spread round the workers within a group): this process then holds
        # one group's arguments (LazyCalls makes them on demand), the workers hold the rest.
        data = []
        for lo in range(0, len(calls), self.slots):
            data += self.client.scatter([tuple(calls[j]) for j in range(lo, min(lo + self.slots, len(calls)))],
                                        hash=False)
        futures = self.client.map(_apply, [fn] * len(calls), data, pure=False)
        try:
            for future in futures:
                yield future.result()
        finally:
            # Free the workers' copies now, not when the futures are garbage-collected.
            self.client.cancel(futures + list(data))

    def close(self) -> None:
        if self._owns:
            self.client.close()

    def describe(self) -> str:
        return f"dask {self.client.scheduler.address} ({self.slots} worker threads)"


def _apply(fn: Callable[..., T], args: tuple[Any, ...]) -> T:
    """Run one call on a worker (module-level so that it pickles by name)."""
    return fn(*args)


def connect(address: str, *, timeout_s: float = CONNECT_TIMEOUT_S) -> DaskBackend:
    """A :class:`DaskBackend` connected to the scheduler at ``address`` with at least one worker.

    Raises :class:`EngineError` when nothing answers there or no worker joins in ``timeout_s``.
    """
    from distributed import Client

    check_scheduler(address)
    try:
        client = Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise EngineError(f"compute.scheduler = {address}: no Dask scheduler answers there ({exc}); start one with "
                          f"`data-engine compute up` or set compute.scheduler = \"local\"") from None
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except TimeoutError:
        client.close()
        raise EngineError(f"compute.scheduler = {address}: the scheduler has no workers "
                          f"(waited {timeout_s:.0f} s)") from None
    return DaskBackend(client, owns_client=True)


@contextmanager
def open_backend(scheduler: str = LOCAL, *, n_jobs: int = 1) -> Iterator[Backend]:
    """The back-end for ``scheduler`` (``"local"`` or an address), closed on exit."""
    backend: Backend = LocalBackend(n_jobs) if scheduler == LOCAL else connect(scheduler)
    log.info("compute back-end: %s", backend.describe())
    try:
        yield backend
    finally:
        backend.close()


@contextmanager
def engine_backend(cfg: Any, given: Backend | None = None) -> Iterator[Backend]:
    """``given`` if a caller (the Dagster resource, a benchmark) already holds one, else the back-end
    of the engine config ``cfg`` (its ``[compute] scheduler`` and ``[mining] n_jobs``)."""
    if given is not None:
        yield given
        return
    with open_backend(cfg.compute.scheduler, n_jobs=cfg.mining.n_jobs) as backend:
        yield backend
