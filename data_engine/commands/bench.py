"""``data-engine bench ...``: benchmarks, one sub-command each.

Other subsystems add their benchmark with :func:`add_benchmark` (a name, a function that adds its
arguments, and a handler taking ``(args, home)``), or by listing a module in :data:`BENCH_MODULES`
that defines ``register_bench()``. Heavy imports stay inside the handlers.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from data_engine.store.home import Home

Handler = Callable[[argparse.Namespace, Home], int]


@dataclass(frozen=True)
class Benchmark:
    """One ``bench`` sub-command."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    handler: Handler


BENCHMARKS: dict[str, Benchmark] = {}

# Modules that define ``register_bench()`` (calling :func:`add_benchmark`); imported when the CLI is built.
BENCH_MODULES: tuple[str, ...] = ("data_engine.bench.ingest", "data_engine.bench.review", "data_engine.bench.retrain",
                                  "data_engine.bench.detect", "data_engine.bench.gate", "data_engine.bench.scale",
                                  "data_engine.bench.propagate", "data_engine.bench.active",
                                  "data_engine.bench.served", "data_engine.bench.size",
                                  "data_engine.bench.drift", "data_engine.bench.slices", "data_engine.bench.columns",
                                  "data_engine.bench.neighbours")


def add_benchmark(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None],
                  handler: Handler) -> None:
    """Register a ``bench NAME`` sub-command (idempotent per name)."""
    BENCHMARKS[name] = Benchmark(name, help, add_arguments, handler)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` command group with every registered benchmark."""
    for name in BENCH_MODULES:
        importlib.import_module(name).register_bench()
    p = sub.add_parser("bench", help="benchmarks (see `data-engine bench -h`)")
    bench_sub = p.add_subparsers(dest="benchmark", metavar="BENCHMARK", required=True)
    for b in BENCHMARKS.values():
        bp = bench_sub.add_parser(b.name, help=b.help)
        b.add_arguments(bp)
        bp.set_defaults(handler=b.handler)
