"""Bulk actions by a person: ``data-engine discard --where SQL`` and ``data-engine relabel --where SQL --label X``."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``discard`` and ``relabel`` sub-commands."""
    for name, help_text in (("discard", "discard from training every example a condition selects"),
                            ("relabel", "give every example a condition selects one label")):
        p = sub.add_parser(name, help=help_text + " (one ledger event each, source 'rule')")
        p.add_argument("--where", required=True, metavar="SQL",
                       help="a condition over current_examples plus label_in_force, is_discarded, label_source, "
                            "is_reviewed, e.g. \"length(sentence) < 3\"")
        if name == "relabel":
            p.add_argument("--label", required=True, help="the label to give")
        p.add_argument("--dry-run", action="store_true", help="show the count and a sample; change nothing")
        p.add_argument("--include-reviewed", action="store_true",
                       help="also change examples a reviewer decided (gold is never changed)")
        p.add_argument("--json", action="store_true", help="print the result as JSON")
        p.set_defaults(handler=cmd_rule)


def cmd_rule(args: argparse.Namespace, home: Home) -> int:
    """Handler of ``discard`` and ``relabel``."""
    from data_engine.review.rules import apply_rule

    discard = args.command == "discard"
    result = apply_rule(home, args.where, discard=discard, label=None if discard else args.label,
                        include_reviewed=args.include_reviewed, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(asdict(result), default=str))
        return 0
    verb = "would change" if result.dry_run else "changed"
    print(f"{result.action} where {result.where}: {result.matched} matched, {verb} {result.changed}, "
          f"{result.unchanged} already so")
    if result.dry_run:
        for row in result.sample:
            print("  " + ", ".join(f"{k}={v}" for k, v in row.items()))
    return 0
