"""Core commands: ``init``, ``ingest``, ``status``, ``seed-demo``."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from data_engine.errors import EngineError
from data_engine.store.config import load_config
from data_engine.store.home import Home


def register(sub: argparse._SubParsersAction) -> None:
    """Add the core sub-commands."""
    p = sub.add_parser("init", help="create an engine home (default config: the digits demo)")
    p.add_argument("--config", type=Path, help="an engine.toml to copy into the home")
    p.add_argument("--force", action="store_true", help="replace an existing, different config")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("ingest", help="ingest files now (the same code the Dagster asset runs)")
    p.add_argument("files", nargs="+", type=Path)
    p.add_argument("--gold", action="store_true", help="treat the files as trusted gold data")
    p.add_argument("--regold", action="store_true",
                   help="with --gold: also store files already ingested as training data as gold examples")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(handler=cmd_ingest)

    p = sub.add_parser("status", help="batches and their states, table counts")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("seed-demo", help="write the digits demo (with label noise) into landing/")
    p.add_argument("--noise", type=float, default=0.2, help="share of labels flipped (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", type=int, default=4)
    p.set_defaults(handler=cmd_seed_demo)


def default_config_text() -> str:
    """The embedded default config (the digits demo)."""
    return resources.files("data_engine.store").joinpath("default_config.toml").read_text(encoding="utf-8")


def init_home(home: Home, config: Path | None = None, *, force: bool = False) -> bool:
    """Create ``home`` with a validated config; return True if the config was written."""
    text = default_config_text() if config is None else _read_user_config(config)
    home.make_dirs()
    if home.config_path.exists():
        if home.config_path.read_text(encoding="utf-8") == text:
            return False
        if not force:
            raise EngineError(f"{home.config_path} exists with another config; pass --force to replace it")
    tmp = home.config_path.with_suffix(".toml.tmp")
    tmp.write_text(text, encoding="utf-8")
    _validated(tmp)  # never install a config that does not validate
    tmp.replace(home.config_path)
    return True


def _validated(path: Path) -> None:
    """Load the config at ``path`` and check its plug-in names against their registries; raise ConfigError."""
    from data_engine.mine.names import check_names

    check_names(load_config(path))


def _read_user_config(path: Path) -> str:
    _validated(path)
    return path.read_text(encoding="utf-8")


def cmd_init(args: argparse.Namespace, home: Home) -> int:
    """``init``."""
    wrote = init_home(home, args.config, force=args.force)
    print(f"{'created' if wrote else 'already set up'}: {home.root} (dataset {home.config.dataset.name!r})")
    print(f"drop files into {home.landing} (trusted gold data into {home.gold_landing})")
    return 0


def cmd_ingest(args: argparse.Namespace, home: Home) -> int:
    """``ingest FILE...``."""
    from data_engine.ingest.batch import to_json
    from data_engine.ingest.summary import summarize
    from data_engine.ingest.landing import PREDICTIONS_DIR, in_progress_reason, link_reason, not_ingested_reason
    from data_engine.steps import ingest_step
    from data_engine.store.classes import config_drift
    from data_engine.store.warehouse import open_warehouse

    missing = [str(f) for f in args.files if not f.is_file()]
    if missing:
        raise EngineError(f"no such file: {', '.join(missing)}")
    for f in args.files:
        # A `.part` (or other in-progress) name is a file still being written, wherever it is: refused
        # before anything is recorded, as `status` and the landing sensor skip it.
        if (why := in_progress_reason(f.name)):
            raise EngineError(f"{f}: {why}")
        # External predictions would otherwise be rejected as examples missing columns.
        if f.resolve().is_relative_to(home.landing.resolve() / PREDICTIONS_DIR):
            raise EngineError(f"{f}: {not_ingested_reason(PREDICTIONS_DIR + '/' + f.name)}; `mine` reads it")
        # A file named inside the landing folder is read as the sensor reads it: no link out of it.
        inside = f.absolute().is_relative_to(home.landing.absolute())
        if inside and (why := link_reason(home.landing.absolute(), f.absolute())):
            raise EngineError(f"{f}: {why}")
    _ = home.config  # a mistaken --home must not become a home (ingest_step checks the same)
    if home.warehouse_path.exists():
        with open_warehouse(home, read_only=True) as con:
            drift = config_drift(con, home.config.dataset)
        if drift:  # said before anything is ingested, never applied silently
            print(f"note: {drift}", file=sys.stderr)
    # Without --gold a file is gold when it lies under landing/gold/, as the landing sensor takes it.
    results = ingest_step(home, args.files, gold=True if args.gold else None, regold=args.regold)
    landed_gold = [r for r in results if r.is_gold and r.status == "ingested"]
    if landed_gold:
        from data_engine.ship.gold import note_gold_change

        with open_warehouse(home) as con:
            note = note_gold_change(con)  # a gold set relabelled in place is said, not taken silently
        if note:
            landed_gold[-1].notes.append(note)
    print(to_json(results) if args.json else summarize(results))
    # A rejected file (unreadable, or no good row) is a failure of the command: scripts must notice
    # it, and a person reads one line per file on stderr, whatever the format of stdout.
    for r in results:
        if r.status == "rejected":
            print(f"error: {r.path}: {r.reason}", file=sys.stderr)
    return 1 if any(r.status == "rejected" for r in results) else 0


def status_report(home: Home) -> dict[str, Any]:
    """Batches, table counts and the label state of the home's warehouse."""
    from data_engine.store.warehouse import open_warehouse, table_counts

    from data_engine.ingest.landing import landed_files, not_ingested_reason

    home.config  # a missing home or a broken config is the user's to fix: say so, exit 2
    files, not_ingested = landed_files(home.landing)
    not_ingested.update({rel: why for rel, _ in files if (why := not_ingested_reason(rel))})
    if not home.warehouse_path.exists():
        return {"home": str(home.root), "dataset": home.config.dataset.name, "batches": [], "counts": {},
                "not_ingested": not_ingested, "slices": []}
    with open_warehouse(home, read_only=True) as con:
        batches = con.execute(
            "SELECT batch_id, status, is_gold, rows_in, rows_ok, rows_quarantined, rows_new, rows_changed, "
            "rows_unchanged, reason, received_at::VARCHAR FROM batches ORDER BY received_at, batch_id"
        ).fetchall()
        cols = ["batch_id", "status", "is_gold", "rows_in", "rows_ok", "rows_quarantined", "rows_new",
                "rows_changed", "rows_unchanged", "reason", "received_at"]
        # Gold is counted apart, as `classes` counts it: the gate's examples, never trained on (a
        # trial read labeled=290 for 230 training labels and 60 gold).
        labels = dict(zip(("labeled", "gold", "discarded"), con.execute(
            "WITH gold AS (SELECT DISTINCT example_id FROM examples WHERE is_gold) "
            "SELECT count(*) FILTER (NOT is_discarded AND example_id NOT IN (SELECT example_id FROM gold)), "
            "count(*) FILTER (NOT is_discarded AND example_id IN (SELECT example_id FROM gold)), "
            "count(*) FILTER (is_discarded) FROM current_labels").fetchone()))
        column_types = dict(con.execute(
            "SELECT column_name, column_type FROM dataset_columns WHERE role <> 'label' ORDER BY position").fetchall())
        return {
            "home": str(home.root),
            "dataset": home.config.dataset.name,
            "batches": [dict(zip(cols, b), drift=_stored_drift(con, b[0])) for b in batches],
            "counts": table_counts(con),
            "labels": labels,
            "column_types": column_types,
            "not_ingested": not_ingested,
            "slices": _latest_slices(con),
        }


def _stored_drift(con: Any, batch_id: str) -> dict[str, Any] | None:
    """The batch's ``drift`` object (as ``ingest --json`` gave it); None when none was computed, or in
    a warehouse that has not had the migration that keeps it yet (opened read-only)."""
    from data_engine.ingest.batch_drift import stored_drift
    from data_engine.store.warehouse import has_table

    return stored_drift(con, batch_id) if has_table(con, "batch_drift") else None


def _latest_slices(con: Any) -> list[dict[str, Any]]:
    """The newest mining run's discovered weak slices (``mine --json``'s ``slices``); [] before one, or
    in a warehouse that has not had the migration that keeps them yet (opened read-only)."""
    from data_engine.mine.slices import SLICE_KEYS, stored_slices
    from data_engine.store.warehouse import has_table

    if not has_table(con, "discovered_slices"):
        return []
    # A rule's figures are null without a rule, and absent before migration 0890 (read-only warehouse).
    return [{k: None if k.startswith("rule_") and (r.get(k) is None or r[k] != r[k]) else r[k] for k in SLICE_KEYS}
            for r in stored_slices(con).to_dict("records")]


def cmd_status(args: argparse.Namespace, home: Home) -> int:
    """``status``."""
    from data_engine.ingest.summary import drift_line, types_text

    report = status_report(home)
    if args.json:
        print(json.dumps(report, default=str))
        return 0
    print(f"home: {report['home']}  dataset: {report.get('dataset', '?')}")
    if not report["batches"]:
        print("no batches yet")
    for b in report["batches"]:
        gold = " gold" if b["is_gold"] else ""
        print(f"  {b['batch_id']:<40} {b['status']:<9}{gold} in={b['rows_in']} ok={b['rows_ok']} "
              f"quarantined={b['rows_quarantined']}" + (f"  ({b['reason']})" if b["reason"] else ""))
        if line := drift_line(b.get("drift")):
            print(f"    {line}")
    if report.get("column_types"):
        print("column types: " + types_text(report["column_types"]))
    for rel, why in report.get("not_ingested", {}).items():
        print(f"  not ingested: landing/{rel} - {why}")
    if report["counts"]:
        print("tables: " + ", ".join(f"{k}={v}" for k, v in report["counts"].items()))
    if report.get("labels"):
        print("labels in force: " + ", ".join(f"{k}={v}" for k, v in report["labels"].items()))
    for line in slice_lines(report.get("slices") or []):
        print(line)
    return 0


def slice_lines(slices: list[dict[str, Any]]) -> list[str]:
    """Discovered weak slices as lines a person reads (``status``, ``mine``)."""
    return [f"weak slice {s['name']}: {s['definition']}: {s['n']} examples, out-of-fold accuracy "
            f"{s['accuracy']:.3f} against {s['rest_accuracy']:.3f} elsewhere (p = {s['p_value']:.2g})" for s in slices]


def cmd_seed_demo(args: argparse.Namespace, home: Home) -> int:
    """``seed-demo``."""
    from data_engine.demo.data import seed_demo

    if not home.config_path.exists():
        init_home(home)
    summary = seed_demo(home, noise=args.noise, seed=args.seed, batches=args.batches)
    print(f"wrote {len(summary.files)} files ({summary.rows} rows, {summary.gold_rows} gold, "
          f"{summary.flipped} labels flipped) into {home.landing}; true labels in {home.oracle_path}")
    return 0
