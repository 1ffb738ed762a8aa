"""``demo-loop``: the engine's main job on a home's data with the simulated reviewer, end to end
(what `make demo` runs on the digits)."""

from __future__ import annotations

import argparse

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``demo-loop``."""
    p = sub.add_parser("demo-loop", help="run rounds of the loop on this home's data, the simulated reviewer "
                                           "answering from HOME/oracle.jsonl (else oracle.csv: the digits demo)")
    p.add_argument("--accuracy", type=float, default=0.98, help="the simulated reviewer's accuracy (default 0.98)")
    p.add_argument("--rounds", type=int, default=8, help="at most this many rounds (default 8)")
    p.add_argument("--budget", type=int, default=None,
                   help="total reviews the demo may ask for (default: twice [review] budget)")
    p.set_defaults(handler=cmd_demo_loop)


def cmd_demo_loop(args: argparse.Namespace, home: Home) -> int:
    """``demo-loop``."""
    from data_engine.demo.loop import final_json, run_demo
    from data_engine.review.labelstudio.server import ADMIN_EMAIL, PASSWORD_FILE

    final = run_demo(home, accuracy=args.accuracy, max_rounds=args.rounds, budget=args.budget,
                     say=lambda line: print(line, flush=True))
    print()
    print("See it for yourself:")
    print("  make up      # Dagster UI at http://127.0.0.1:3000/asset-groups (lineage, metadata, sensors)")
    print(f"               # Label Studio at {home.config.review.url}: log in as {ADMIN_EMAIL} with the password")
    print(f"               # in {home.secrets / PASSWORD_FILE} to see the reviewed tasks")
    print(final_json(final), flush=True)
    return 0
