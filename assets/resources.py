"""Dagster resources: the engine home (warehouse, config, models) as one configurable resource."""


from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from data_engine.store.home import Home


class EngineResource(dg.ConfigurableResource):
    """The engine's home directory; every asset reaches the warehouse and config through it."""

    home: str

    def get_home(self) -> Home:
        """The :class:`Home` this resource points at."""
        return Home.resolve(self.home)


# Every run that writes the DuckDB file carries this tag; the instance config written by the
# set-up (see scripts/dagster.yaml) limits runs with it to one at a time, because DuckDB allows
# one writer process.
WAREHOUSE_TAG = {"data-engine/warehouse": "write"}


class LabelStudioResource(dg.ConfigurableResource):
    """The Label Studio server: its API key arrives through ``EnvVar``, never through code or config.

    ``url`` empty means the engine config's ``[review] url``.
    """

    api_key: str
    url: str = ""

    @contextmanager
    def client(self, home: Home) -> Iterator[Any]:
        """A ``LabelStudioClient`` for this server, closed on exit."""
        from data_engine.review.labelstudio.client import LabelStudioClient

        cfg = home.config.review
        client = LabelStudioClient(self.url or cfg.url, self.api_key, timeout_s=cfg.timeout_seconds,
                                   key_name=f"${cfg.api_key_env}")
        try:
            yield client
        finally:
            client.close()
