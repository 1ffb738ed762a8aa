"""Dagster resources: the engine home (warehouse, config, models), the compute back-end, Label Studio."""


import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import dagster as dg
from pydantic import PrivateAttr

from data_engine.compute.backend import LOCAL, Backend, LocalBackend, connect
from data_engine.store.home import Home


class EngineResource(dg.ConfigurableResource):
    """The engine's home directory; every asset reaches the warehouse and config through it."""

    home: str

    def get_home(self) -> Home:
        """The :class:`Home` this resource points at."""
        return Home.resolve(self.home)


class ComputeResource(dg.ConfigurableResource):
    """Where mining's fold fits and neighbour search run; holds one Dask client for the whole run.

    Dagster's recommended way to use a Dask cluster from assets: a resource that owns the
    ``distributed.Client`` (set up once per run and process, closed at its end), rather than
    Dagster's older Dask executor, which only spreads whole steps. ``scheduler`` empty means the
    engine config's ``[compute] scheduler``; "local" uses ``[mining] n_jobs`` processes.
    """

    engine: EngineResource
    scheduler: str = ""

    _backend: Backend | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Connect to the scheduler (or prepare the local pool) once for the run."""
        cfg = self.engine.get_home().config
        scheduler = self.scheduler or cfg.compute.scheduler
        self._backend = LocalBackend(cfg.mining.n_jobs) if scheduler == LOCAL else connect(scheduler)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        """Close the client."""
        if self._backend is not None:
            self._backend.close()
            self._backend = None

    def get_backend(self) -> Backend:
        """The back-end set up for this run."""
        if self._backend is None:  # used outside a run (e.g. called directly in a test)
            self.setup_for_execution(dg.build_init_resource_context())
        return self._backend


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
        _say_remote_once(self.url or cfg.url, cfg.api_key_env)
        client = LabelStudioClient(self.url or cfg.url, self.api_key, timeout_s=cfg.timeout_seconds,
                                   key_name=f"${cfg.api_key_env}")
        try:
            yield client
        finally:
            client.close()


# Review URLs already said in this process (the sensor opens a client every tick: once is enough).
_REMOTE_SAID: set[str] = set()


def _say_remote_once(url: str, api_key_env: str) -> None:
    """Warn in Dagster's log, once per process, that the API key goes to a review server off this machine."""
    from data_engine.store.review_url import remote_review_notice

    notice = remote_review_notice(url, api_key_env)
    if notice and url not in _REMOTE_SAID:
        _REMOTE_SAID.add(url)
        dg.get_dagster_logger().warning(notice)


class FakeLabelStudioResource(LabelStudioResource):
    """An in-memory Label Studio for tests of the review assets and sensor: ``client`` hands out one
    :class:`~data_engine.review.labelstudio.fake.FakeReviewClient` for every run and tick, so a test
    pushes, answers as a reviewer on that client, ticks the sensor and pulls.

    Dagster rebuilds a resource from its config for each run, so the fake is found by ``server``, a
    key into a registry of live fakes, not held by the resource. Build it with :meth:`over`.
    """

    api_key: str = ""
    server: str

    # Weak values: a fake lives as long as the test that holds it.
    _servers: ClassVar[weakref.WeakValueDictionary[str, Any]] = weakref.WeakValueDictionary()

    @classmethod
    def over(cls, fake: Any) -> "FakeLabelStudioResource":
        """A resource serving ``fake`` (a ``FakeReviewClient``) to every run and sensor tick."""
        key = uuid.uuid4().hex
        cls._servers[key] = fake
        return cls(url=fake.url, server=key)

    @contextmanager
    def client(self, home: Home) -> Iterator[Any]:
        """The registered fake (closing it releases nothing, like the real one's pool)."""
        fake = self._servers.get(self.server)
        if fake is None:
            raise KeyError(f"no fake Label Studio registered as {self.server!r}: build the resource with over()")
        yield fake
