"""Dagster resources: the engine home (warehouse, config, models) as one configurable resource."""


import dagster as dg

from data_engine.home import Home


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
