"""Shared fixtures: a fresh engine home with a small tabular config, a way to ingest into it, and a
digits home with a trained champion (built once per session, copied by each test module that uses it).

Kept small on purpose; subsystems add their own ``conftest.py`` in their folders.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

from data_engine.ingest.batch import IngestResult, ingest_file, is_gold_path
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests import homes
from tests.suite_order import longest_files_first, read_file_seconds

# The session's one real Label Studio server and the homes that use it (integration, reliability).
pytest_plugins = ["tests.labelstudio_server"]

# The tests that take the most time (tests/heavy_tests.txt, written by scripts/heavy_tests.py from a
# measured run) are marked `heavy`: `make test-fast` leaves them out, `make test` runs them.
HEAVY_TESTS = frozenset(
    line.strip() for line in (Path(__file__).parent / "heavy_tests.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#"))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the listed tests ``heavy`` before ``-m`` selects (hence ``tryfirst``); order them for workers."""
    for item in items:
        if item.nodeid in HEAVY_TESTS:
            item.add_marker(pytest.mark.heavy)
    # On pytest-xdist's workers only (each collects the same items and must order them alike): the
    # longest files first (tests/suite_order.py). A run on one process keeps the collection order.
    if os.environ.get("PYTEST_XDIST_WORKER"):
        order = longest_files_first([item.nodeid for item in items], read_file_seconds())
        items[:] = [items[position] for position in order]


# The next label event id, for tests that write one event per statement (writers assign ids
# themselves: see data_engine.store.warehouse.last_event_id).
NEXT_EVENT_ID = "(SELECT coalesce(max(event_id), 0) + 1 FROM label_events)"

# A tabular dataset small enough to write by hand: one numeric and one categorical feature.
TOY_CONFIG = """\
[dataset]
name = "toy"
modality = "tabular"
id_column = "id"
label_column = "label"
feature_columns = ["x", "color"]
classes = ["a", "b"]
column_types = { x = "numeric", color = "categorical" }
"""

TEXT_CONFIG = """\
[dataset]
name = "notes"
modality = "text"
id_column = "id"
label_column = "label"
text_column = "note"
classes = ["pos", "neg"]
"""


@pytest.fixture()
def make_home(tmp_path: Path) -> Callable[..., Home]:
    """A factory: ``make_home(config_text=TOY_CONFIG, name="home")`` creates a fresh engine home in
    ``tmp_path`` (:func:`tests.homes.make_home` with the toy dataset as the default config)."""

    def make(config_text: str = TOY_CONFIG, name: str = "home") -> Home:
        return homes.make_home(tmp_path, config_text, name=name)

    return make


@pytest.fixture()
def toy_home(make_home: Callable[..., Home]) -> Home:
    """A fresh home for the toy dataset (no warehouse yet)."""
    return make_home()


@pytest.fixture()
def toy_con(toy_home: Home) -> Iterator[duckdb.DuckDBPyConnection]:
    """An open, migrated warehouse connection of ``toy_home``."""
    with open_warehouse(toy_home) as con:
        yield con


@pytest.fixture()
def ingest_toy(toy_home: Home, toy_con: duckdb.DuckDBPyConnection) -> Callable[..., IngestResult]:
    """``ingest_toy(name, content)`` writes ``content`` (str or bytes) to landing/``name`` and ingests it."""

    def ingest(name: str, content: str | bytes | None = None, **kwargs: bool) -> IngestResult:
        path = toy_home.landing / name
        if content is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                path.write_text(content, encoding="utf-8")
            else:
                path.write_bytes(content)
        gold = kwargs.get("gold", is_gold_path(toy_home, path))
        return ingest_file(toy_con, toy_home.config.dataset, path, gold=gold)

    return ingest


@dataclass(frozen=True)
class FittedDigits:
    """A digits home (the fast linear model; 300 training and 60 gold examples, labels as drawn) whose
    champion v1 was trained on them: ``info`` as :func:`tests.homes.seed_digits` returns it."""

    root: Path
    info: dict[str, Any]
    champion: Any  # the ModelRecord of v1

    def copy(self, dest: Path) -> Home:
        """A private copy of the home at ``dest`` (tests may train, promote or break it)."""
        shutil.copytree(self.root, dest)
        return Home(dest)


@pytest.fixture(scope="session")
def fitted_digits(tmp_path_factory: pytest.TempPathFactory) -> FittedDigits:
    """The shared fitted model: trained once per session, never changed (use :meth:`FittedDigits.copy`)."""
    from data_engine.ship import deploy
    from data_engine.ship.training import train_candidate
    from tests.loop_support import make_home as digits_home
    from tests.loop_support import seed_digits

    home = digits_home(tmp_path_factory.mktemp("fitted-digits"))
    info = seed_digits(home, n_train=300, n_gold=60, n_unlabeled=0)
    with open_warehouse(home) as con:
        v1 = train_candidate(con, home).record
        deploy.promote(con, home, v1.version, reason="first")
    return FittedDigits(home.root, info, v1)
