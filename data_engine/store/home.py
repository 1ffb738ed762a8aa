"""The engine's home: the one directory that holds all state of one engine.

Layout (created by ``data-engine init``)::

    HOME/
      engine.toml            the config (see data_engine.store.config)
      warehouse.duckdb       the warehouse (see data_engine.store.warehouse)
      landing/               files dropped here are ingested; landing/gold/ holds trusted gold data
      models/                model artifacts (skops files, checked against their sha256)
      secrets/               0600 files: the Label Studio API token
      dagster/               DAGSTER_HOME for `make up`
      labelstudio/           the Label Studio server's data directory
      oracle.csv             true labels written by `seed-demo`; the engine never reads it
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from data_engine.errors import ConfigError
from data_engine.store.config import EngineConfig, load_config

HOME_ENV = "DATA_ENGINE_HOME"
DEFAULT_HOME = ".data-engine"


@dataclass(frozen=True)
class Home:
    """Paths inside one engine home."""

    root: Path

    @classmethod
    def resolve(cls, home: str | os.PathLike[str] | None = None) -> "Home":
        """The home named by ``home``, else ``$DATA_ENGINE_HOME``, else ``./.data-engine``."""
        chosen = home or os.environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().resolve())

    @property
    def config_path(self) -> Path:
        """``engine.toml``."""
        return self.root / "engine.toml"

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file."""
        return self.root / "warehouse.duckdb"

    @property
    def landing(self) -> Path:
        """Where new files land."""
        return self.root / "landing"

    @property
    def gold_landing(self) -> Path:
        """Files under here are trusted evaluation data."""
        return self.landing / "gold"

    @property
    def predictions_landing(self) -> Path:
        """Class probabilities of the user's own model (``[mining] predictions = "external"``); never ingested as data."""
        return self.landing / "predictions"

    @property
    def models(self) -> Path:
        """Model artifacts."""
        return self.root / "models"

    @property
    def secrets(self) -> Path:
        """0600 secret files."""
        return self.root / "secrets"

    @property
    def dagster_home(self) -> Path:
        """DAGSTER_HOME used by `make up`."""
        return self.root / "dagster"

    @property
    def labelstudio_dir(self) -> Path:
        """The Label Studio server's data directory."""
        return self.root / "labelstudio"

    @property
    def oracle_path(self) -> Path:
        """True labels of the demo data (read by the simulated reviewer and benchmarks only)."""
        return self.root / "oracle.csv"

    @cached_property
    def config(self) -> EngineConfig:
        """The validated config (read once per ``Home`` object)."""
        if not self.root.is_dir():
            raise ConfigError(f"{self.root}: no engine home here; run `data-engine --home {self.root} init`")
        return load_config(self.config_path)

    def make_dirs(self) -> None:
        """Create the home's directories (idempotent)."""
        for path in (self.root, self.landing, self.gold_landing, self.models, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(parents=True, exist_ok=True)
        os.chmod(self.secrets, 0o700)
