"""``data-engine classes``: the dataset's classes as a managed set (list, ``add``, ``rename``)."""

from __future__ import annotations

import argparse
import json
import sys

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``classes`` command and its ``add`` and ``rename`` sub-commands."""
    p = sub.add_parser("classes", help="list the classes; add one that arrived later, or rename one")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_classes)
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    a = actions.add_parser("add", help="append classes and admit the rows quarantined for them")
    a.add_argument("names", nargs="+", metavar="NAME")
    a.add_argument("--json", action="store_true", help="print the result as JSON")
    a.set_defaults(handler=cmd_classes)
    r = actions.add_parser("rename", help="rename a class: labels in force follow (new ledger events)")
    r.add_argument("old", metavar="OLD")
    r.add_argument("new", metavar="NEW")
    r.add_argument("--json", action="store_true", help="print the result as JSON")
    r.set_defaults(handler=cmd_classes)


def cmd_classes(args: argparse.Namespace, home: Home) -> int:
    """``classes``, ``classes add NAME...``, ``classes rename OLD NEW``."""
    from data_engine.store.classes import config_drift, list_classes
    from data_engine.store.warehouse import open_warehouse

    ds = home.config.dataset
    if not args.action:
        with open_warehouse(home, read_only=True) as con:
            rows, drift = list_classes(con), config_drift(con, ds)
        if args.json:
            print(json.dumps({"classes": rows, "config_differs": drift}, default=str))
            return 0
        if not rows:
            print("no classes yet: the first labeled batch (or [dataset] classes) fixes them")
        for row in rows:
            print(f"  {row['position']:>3}  {row['class_label']:<30} labels in force: {row['labels_in_force']:<7} "
                  f"gold: {row['gold_labels']:<6} ({row['source']})")
        if drift:
            print(f"note: {drift}", file=sys.stderr)
        return 0
    from data_engine.ingest.classes import add_classes, rename_class

    with open_warehouse(home) as con:
        if args.action == "add":
            change = add_classes(con, ds, args.names)
        else:
            change = rename_class(con, ds, args.old, args.new)
            from data_engine.ship.deploy import sync_pointer

            # Servers answer with the new name: the pointer carries the rename (data_engine.ship.renamed).
            sync_pointer(con, home)
    if args.json:
        print(json.dumps(change.to_dict(), default=str))
        return 0
    if change.added:
        print(f"added: {', '.join(map(repr, change.added))}")
    for old, new in change.renamed.items():
        print(f"renamed {old!r} to {new!r}: {change.labels_renamed} labels in force relabelled (new ledger events)")
    print(f"re-admitted {change.rows_readmitted} quarantined rows"
          + (f" ({', '.join(f'{k}={v}' for k, v in change.readmitted_by_class.items())})"
             if change.readmitted_by_class else "")
          + (f"; {change.rows_superseded} left quarantined (a later batch stored their ids)"
             if change.rows_superseded else ""))
    for b in change.batches:
        print(f"  {b.batch_id}: {b.reason}")
    for label, w in change.spellings_waiting.items():
        print(f"  still quarantined: {w['rows']} row(s) labelled {label!r}, which differs from the class "
              f"{w['class']!r} only in case or spaces: write {w['class']!r} in the file and land it again")
    print("classes: " + ", ".join(map(repr, change.classes)))
    return 0
