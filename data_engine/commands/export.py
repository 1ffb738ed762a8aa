"""``data-engine export``: the training data with the labels in force, as a file."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from data_engine.store.home import Home

EXPORTS_DIR = "exports"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``export`` sub-command."""
    p = sub.add_parser("export", help="write the training data with the labels in force (and their source) "
                                      "to a file; gold is never included")
    p.add_argument("--format", choices=("csv", "parquet", "jsonl"), default=None,
                   help="file format (default: from --out's extension, else csv)")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="where to write (default: HOME/exports/DATASET-labels-SNAPSHOT.FORMAT)")
    p.add_argument("--include-discarded", action="store_true",
                   help="also write discarded examples, marked in the column `discarded` (their label empty)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=cmd_export)


def cmd_export(args: argparse.Namespace, home: Home) -> int:
    """``export``."""
    from data_engine.errors import EngineError
    from data_engine.ship.export import export_training_data, format_for
    from data_engine.store.dataset import label_snapshot
    from data_engine.store.warehouse import open_warehouse

    ds = home.config.dataset
    fmt = format_for(args.out, args.format)
    if not home.warehouse_path.exists():
        raise EngineError(f"nothing to export: {home.root} has no warehouse yet (`data-engine ingest FILE`)")
    with open_warehouse(home, read_only=True) as con:
        out = args.out
        if out is None:
            folder = home.root / EXPORTS_DIR
            folder.mkdir(exist_ok=True)
            out = folder / f"{ds.name}-labels-{label_snapshot(con)}.{fmt}"
        result = export_training_data(con, ds, out, fmt, include_discarded=args.include_discarded)
    print(json.dumps(asdict(result), default=str) if args.json else result.summary())
    return 0
