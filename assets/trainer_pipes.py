"""The user's trainer launched through Dagster Pipes: its logs and reported metadata land on the asset.

:func:`trainer_through_pipes` makes :mod:`data_engine.trainers.command` run the trainer inside a
Dagster Pipes session for the duration of an asset's body (the CLI runs the same contract as a plain
subprocess). Dagster's ``PipesSubprocessClient`` has no timeout and does not return the process's
stderr, both of which the contract needs (``[model] timeout_s``, the error quoting the trainer's
last stderr lines), so the session is opened with Dagster's own ``open_pipes_session`` and the
process started here, as Dagster documents for custom Pipes clients.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from data_engine.trainers.runner import set_runner


@contextmanager
def trainer_through_pipes(context: dg.AssetExecutionContext) -> Iterator[dict[str, Any]]:
    """Run trainer commands through Pipes while the block runs; yield a dict that receives the
    metadata the trainer reported (``report_asset_materialization``), prefixed ``trainer/``.

    A trainer's own ``pipes.log`` lines go to the run's log as it sends them; its stderr tail is
    logged after each call. In a process other than the asset's (folds sent to workers) the plain
    subprocess runner is used.
    """
    reported: dict[str, Any] = {}

    def run(argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
        with dg.open_pipes_session(context=context, context_injector=dg.PipesTempFileContextInjector(),
                                   message_reader=dg.PipesTempFileMessageReader()) as session:
            proc = subprocess.Popen(list(argv), env={**os.environ, **session.get_bootstrap_env_vars()},
                                    stderr=subprocess.PIPE, text=True)
            try:
                _, err = proc.communicate(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
                raise subprocess.TimeoutExpired(list(argv), timeout_s, stderr=err) from None
        for line in (err or "").splitlines()[-20:]:
            context.log.info(f"trainer stderr: {line}")
        for result in session.get_reported_results():
            for key, value in (result.metadata or {}).items():
                reported[f"trainer/{key}"] = value
        return proc.returncode, err or ""

    previous = set_runner(run)
    try:
        yield reported
    finally:
        set_runner(previous)
