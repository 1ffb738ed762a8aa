"""``data-engine compute up|down|status``: a Dask scheduler and workers on 127.0.0.1 for this home."""

from __future__ import annotations

import argparse

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compute`` command group."""
    p = sub.add_parser("compute", help="a local Dask cluster for the distributed back-end (up, down, status)")
    csub = p.add_subparsers(dest="compute_command", metavar="ACTION", required=True)
    up = csub.add_parser("up", help="start a scheduler and workers on 127.0.0.1; prints the scheduler address")
    up.add_argument("--workers", type=int, default=2, help="worker processes (default 2), one thread each")
    up.add_argument("--port", type=int, default=8786, help="scheduler port (default 8786; 0 picks a free one)")
    up.set_defaults(handler=_up)
    csub.add_parser("down", help="stop this home's scheduler and workers").set_defaults(handler=_down)
    csub.add_parser("status", help="the scheduler address and live workers").set_defaults(handler=_status)


def _up(args: argparse.Namespace, home: Home) -> int:
    from data_engine.compute.cluster import start_cluster

    address = start_cluster(home, workers=args.workers, port=args.port)
    print(address)
    return 0


def _down(args: argparse.Namespace, home: Home) -> int:
    from data_engine.compute.cluster import stop_cluster

    print(f"stopped {stop_cluster(home)} process(es)")
    return 0


def _status(args: argparse.Namespace, home: Home) -> int:
    from data_engine.compute.cluster import cluster_status

    st = cluster_status(home)
    if not st.running:
        print("not running")
        return 1
    print(f"scheduler {st.address} (pid {st.scheduler_pid}); worker processes {len(st.worker_pids)}; "
          f"workers connected {st.workers_connected if st.workers_connected is not None else 'unknown'}")
    return 0
