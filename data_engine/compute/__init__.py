"""Compute back-ends: this machine's process pool or a Dask cluster (``[compute] scheduler``).

:mod:`data_engine.compute.backend` maps pure functions over calls or batches;
:mod:`data_engine.compute.cluster` starts a scheduler and workers on 127.0.0.1 for trying it.
"""

from data_engine.compute.backend import (
    LOCAL,
    Backend,
    DaskBackend,
    LocalBackend,
    check_scheduler,
    connect,
    engine_backend,
    open_backend,
)

__all__ = ["LOCAL", "Backend", "DaskBackend", "LocalBackend", "check_scheduler", "connect", "engine_backend",
           "open_backend"]
