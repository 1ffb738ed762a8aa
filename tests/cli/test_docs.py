"""Every CLI command and every public table is documented in the README."""

import argparse
from pathlib import Path

from data_engine.cli import build_parser
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix}{name}")
                found += _commands(sub, f"{prefix}{name} ")
    return found


def test_every_cli_command_is_in_the_readme() -> None:
    commands = _commands(build_parser())
    assert len(commands) > 15
    missing = []
    for cmd in commands:
        words = cmd.split()
        # A sub-command is documented as `group a|b|c` or `group a`.
        if f"`{cmd}" not in README and not any(
            f"`{words[0]} " in README and words[-1] in line for line in README.splitlines() if f"`{words[0]}" in line
        ):
            missing.append(cmd)
    assert not missing, f"undocumented commands: {missing}"


def test_every_public_table_is_in_the_readme(tmp_path: Path) -> None:
    home = make_home(tmp_path)
    with open_warehouse(home) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    for table in ("batches", "examples", "label_events", "label_ledger", "quarantine", "current_labels", "predictions",
                  "mining_runs", "issues", "review_queue", "review_tasks", "models", "deployments"):
        assert table in tables
        assert f"`{table}`" in README, table
