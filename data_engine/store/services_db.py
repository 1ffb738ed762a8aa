"""Which database the services of a home (Label Studio, Dagster's instance) use: SQLite or PostgreSQL.

SQLite, inside each service's own directory, is the default for one person. ``scripts/postgres.sh
up`` (run by ``DATA_ENGINE_SERVICES_DB=postgres make up``) initialises a PostgreSQL cluster in
``HOME/postgres`` and records how to reach it in ``HOME/postgres/connection.json`` (no secrets);
the password is the 0600 file ``HOME/secrets/postgres_password``. From then on the home's services
use PostgreSQL: a home whose projects live there must never silently come up on an empty SQLite.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from data_engine.errors import EngineError
from data_engine.store.home import Home

CONNECTION_FILE = "connection.json"
PASSWORD_FILE = "postgres_password"


@dataclass(frozen=True)
class PostgresServer:
    """How to reach the home's PostgreSQL. ``repr`` hides the password."""

    host: str
    port: int
    user: str
    password: str
    labelstudio_db: str
    dagster_db: str

    def __repr__(self) -> str:
        return f"PostgresServer({self.user}@{self.host}:{self.port}, password=***)"


def postgres_server(home: Home) -> PostgresServer | None:
    """The home's PostgreSQL, or None when its services use SQLite.

    Raises :class:`EngineError` naming the file when the connection file or the password is
    unreadable.
    """
    path = home.root / "postgres" / CONNECTION_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        password = (home.secrets / PASSWORD_FILE).read_text(encoding="utf-8").strip()
        return PostgresServer(host=str(raw["host"]), port=int(raw["port"]), user=str(raw["user"]), password=password,
                              labelstudio_db=str(raw["labelstudio_db"]), dagster_db=str(raw["dagster_db"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"{path}: unreadable PostgreSQL settings ({exc}); re-run scripts/postgres.sh up") from None


def labelstudio_db_env(home: Home) -> dict[str, str]:
    """Environment that points Label Studio at the home's PostgreSQL (empty: its own SQLite).

    Label Studio's settings read ``DJANGO_DB`` ("default" is PostgreSQL) and ``POSTGRE_NAME``,
    ``POSTGRE_USER``, ``POSTGRE_PASSWORD``, ``POSTGRE_HOST``, ``POSTGRE_PORT``.
    """
    pg = postgres_server(home)
    if pg is None:
        return {}
    return {"DJANGO_DB": "default", "POSTGRE_NAME": pg.labelstudio_db, "POSTGRE_USER": pg.user,
            "POSTGRE_PASSWORD": pg.password, "POSTGRE_HOST": pg.host, "POSTGRE_PORT": str(pg.port)}
