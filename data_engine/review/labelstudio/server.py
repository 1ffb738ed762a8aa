"""A real Label Studio server, started and stopped without an installer or a browser.

The server runs from its own venv (``$DATA_ENGINE_LABEL_STUDIO_BIN``, else
``<repo>/.venv-ls/bin/label-studio``) as a service, like a database. At its first start the
admin user and a legacy API token are created through environment variables; the token and the
password are generated here and kept in ``HOME/secrets/`` with mode 0600, never in the config or
the logs. The server binds 127.0.0.1 only and makes no outbound calls.

A server already running for this home is re-used; a stopped one is restarted on the same data
dir. ``HOME/labelstudio/server.json`` records the pid and URL (no secrets).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from data_engine.errors import EngineError, ReviewServiceError
from data_engine.processes import pid_alive as _alive
from data_engine.processes import runs_program, stop_process_group
from data_engine.store.home import Home
from data_engine.store.services_db import labelstudio_db_env

BIN_ENV = "DATA_ENGINE_LABEL_STUDIO_BIN"
LOOPBACK = "127.0.0.1"
# Django's EmailField rejects dotless domains such as "localhost"; example.com is reserved (RFC 2606).
ADMIN_EMAIL = "engine-admin@example.com"
TOKEN_FILE = "labelstudio_token"
PASSWORD_FILE = "labelstudio_password"
SECRET_KEY_FILE = "labelstudio_secret_key"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
# A fresh data dir runs ~100 Django migrations: 25 s on an idle machine, over 2 min on a loaded one.
DEFAULT_START_WAIT_S = 300.0
STOP_WAIT_S = 15.0
# Only these variables of the caller's environment reach the server: Label Studio reads
# LABEL_STUDIO_X, then HEARTEX_X, then bare X, so a stray PORT, HOST, USERNAME or PASSWORD
# (or DJANGO_DB, DATABASE_URL, ...) would silently change how it runs.
_PASSED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SSL_CERT_FILE", "SSL_CERT_DIR")


@dataclass(frozen=True)
class Credentials:
    """The admin account of a managed server. ``repr`` hides the secrets."""

    email: str
    password: str
    token: str

    def __repr__(self) -> str:
        return f"Credentials(email={self.email!r}, password=***, token=***)"


@dataclass(frozen=True)
class ServerInfo:
    """A running server: where it listens and which process it is."""

    url: str
    port: int
    pid: int
    data_dir: str
    reused: bool = False


def repo_root() -> Path:
    """The checkout this package lives in (``data_engine/review/labelstudio/server.py`` -> repo)."""
    return Path(__file__).resolve().parents[3]


def find_server_binary() -> Path:
    """The ``label-studio`` executable: ``$DATA_ENGINE_LABEL_STUDIO_BIN``, else ``.venv-ls``."""
    chosen = os.environ.get(BIN_ENV)
    path = Path(chosen).expanduser() if chosen else repo_root() / ".venv-ls" / "bin" / "label-studio"
    if not path.is_file() or not os.access(path, os.X_OK):
        where = f"${BIN_ENV} = {chosen}" if chosen else str(path)
        raise EngineError(f"Label Studio server not installed: no executable at {where}; run `make setup`")
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((LOOPBACK, port)) == 0


def read_or_create_secret(path: Path, nbytes: int = 20) -> str:
    """Read a secret file, creating it (mode 0600, in a 0700 dir) with a random hex value first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    if path.exists():
        os.chmod(path, 0o600)  # repair a copy made with a looser umask
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    value = secrets.token_hex(nbytes)
    # O_EXCL|0600: the file is never readable by others, not even for an instant.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value


def admin_credentials(secrets_dir: Path) -> Credentials:
    """The admin email, password and legacy API token (created on first use)."""
    return Credentials(
        email=ADMIN_EMAIL,
        password=read_or_create_secret(secrets_dir / PASSWORD_FILE, 16),
        # Django's authtoken key column holds 40 characters: 20 random bytes in hex.
        token=read_or_create_secret(secrets_dir / TOKEN_FILE, 20),
    )


def server_env(data_dir: Path, creds: Credentials, secret_key: str, document_root: Path | None = None) -> dict[str, str]:
    """The complete environment of the server process (an allow-list, see ``_PASSED_ENV``).

    With ``document_root`` (the engine home), the server may serve files under it to reviewers:
    only files inside a project's local-files storage (the engine connects ``HOME/images``), and
    only to users of that project (Label Studio's own check in ``localfiles_data``)."""
    env = {k: os.environ[k] for k in _PASSED_ENV if k in os.environ}
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=creds.email,
        LABEL_STUDIO_PASSWORD=creds.password,
        LABEL_STUDIO_USER_TOKEN=creds.token,
        # Without it the legacy token is answered with 401 "legacy token authentication has been disabled".
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        # A stable Django secret keeps browser sessions valid across restarts.
        SECRET_KEY=secret_key,
        # No outbound calls: error reporting, version check, analytics.
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        LATEST_VERSION_CHECK="false",
        COLLECT_ANALYTICS="false",
        PYTHONUNBUFFERED="1",
    )
    if document_root is not None:
        env.update(LOCAL_FILES_SERVING_ENABLED="true", LOCAL_FILES_DOCUMENT_ROOT=str(Path(document_root).resolve()))
    return env


def health_ok(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET {url}/health`` answers 200."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def start_server(
    data_dir: Path,
    secrets_dir: Path,
    port: int,
    *,
    wait_s: float = DEFAULT_START_WAIT_S,
    binary: Path | None = None,
    db_env: Mapping[str, str] | None = None,
    document_root: Path | None = None,
) -> ServerInfo:
    """Start a server on 127.0.0.1:``port`` with ``data_dir`` and wait for ``/health``; with
    ``document_root``, it serves local files under it (see :func:`server_env`).

    ``db_env``: its database settings (:func:`data_engine.store.services_db.labelstudio_db_env`);
    none means its SQLite file in ``data_dir``.

    Raises :class:`EngineError` when the port is taken or the server does not come up (the
    message names the log file to read).
    """
    binary = binary or find_server_binary()
    if port_in_use(port):
        # Label Studio would silently move to the next port; a client configured for this one
        # would then talk to whatever holds it.
        holder = ("another Label Studio (not this home's; its API key would let the engine use it)"
                  if health_ok(f"http://{LOOPBACK}:{port}") else "a program that is not Label Studio")
        raise EngineError(f"cannot start Label Studio: port {port} on {LOOPBACK} is already in use by {holder}; "
                          f"stop it or set review.url to another port")
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)  # its SQLite file holds the users and their tokens
    creds = admin_credentials(secrets_dir)
    secret_key = read_or_create_secret(secrets_dir / SECRET_KEY_FILE, 32)
    log_path = data_dir / LOG_FILE
    url = f"http://{LOOPBACK}:{port}"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [str(binary), "start", "--internal-host", LOOPBACK, "--port", str(port), "--host", url,
             "--no-browser"],
            cwd=data_dir,
            env={**server_env(data_dir, creds, secret_key, document_root), **(db_env or {})},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C in the caller's terminal does not reach it, and
            # stop_server can signal the whole group.
            start_new_session=True,
        )
    info = ServerInfo(url=url, port=port, pid=proc.pid, data_dir=str(data_dir))
    _write_state(data_dir, info)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EngineError(f"Label Studio at {url} exited with status {proc.returncode} while starting; see {log_path}")
        if health_ok(url):
            return info
        time.sleep(0.5)
    stop_pid(proc.pid)
    raise EngineError(f"Label Studio at {url} did not become healthy within {wait_s:.0f} s; see {log_path}")


def stop_pid(pid: int, wait_s: float = STOP_WAIT_S) -> bool:
    """SIGTERM the server's process group, SIGKILL it after ``wait_s``; False if it was gone."""
    return stop_process_group(pid, wait_s)


def read_state(data_dir: Path) -> ServerInfo | None:
    """The recorded server of ``data_dir``, if any (it may have stopped since)."""
    try:
        raw = json.loads((data_dir / STATE_FILE).read_text(encoding="utf-8"))
        return ServerInfo(url=raw["url"], port=int(raw["port"]), pid=int(raw["pid"]), data_dir=raw["data_dir"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_server(data_dir: Path) -> ServerInfo | None:
    """The recorded server if its process is alive, is Label Studio, and answers ``/health``."""
    state = read_state(data_dir)
    if state is None or not _is_label_studio(state.pid):
        return None
    if not health_ok(state.url):
        return None
    return ServerInfo(**{**asdict(state), "reused": True})


def configured_port(home: Home) -> int:
    """The port of ``review.url``, which must point at this machine's loopback interface."""
    parts = urlsplit(home.config.review.url)
    if parts.hostname not in (LOOPBACK, "localhost") or parts.scheme != "http":
        raise EngineError(f"review.url = {home.config.review.url}: `labelstudio up` only manages a local server "
                          f"(http://127.0.0.1:PORT); start the remote one yourself")
    return parts.port or 80


def ensure_server(home: Home, *, port: int | None = None, wait_s: float = DEFAULT_START_WAIT_S) -> ServerInfo:
    """Re-use the home's running server, else (re)start it on ``port`` (default: ``review.url``'s)."""
    current = running_server(home.labelstudio_dir)
    if current is not None:
        return current
    state = read_state(home.labelstudio_dir)
    if state is not None and _alive(state.pid) and _is_label_studio(state.pid):
        # Started but not healthy yet (another `up` is waiting, or it is still migrating): wait for it.
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and _alive(state.pid):
            if health_ok(state.url):
                return ServerInfo(**{**asdict(state), "reused": True})
            time.sleep(0.5)
        raise EngineError(f"Label Studio at {state.url} (pid {state.pid}) is running but not healthy; "
                          f"see {home.labelstudio_dir / LOG_FILE}")
    # The home is the document root: image files are served from HOME/images (see review.push).
    return start_server(home.labelstudio_dir, home.secrets, port or configured_port(home), wait_s=wait_s,
                        document_root=home.root, db_env=labelstudio_db_env(home))


def stop_server(home: Home) -> bool:
    """Stop the home's server; False if none was running."""
    state = read_state(home.labelstudio_dir)
    if state is None or not _is_label_studio(state.pid):
        return False
    return stop_pid(state.pid)


def server_status(home: Home) -> dict[str, object]:
    """What ``labelstudio status`` prints: running or not, URL, pid, data dir."""
    state = read_state(home.labelstudio_dir)
    if state is None:
        return {"running": False, "data_dir": str(home.labelstudio_dir)}
    alive = _is_label_studio(state.pid)
    return {"running": alive and health_ok(state.url), "process_alive": alive, "url": state.url,
            "pid": state.pid, "data_dir": state.data_dir}


def read_token(home: Home) -> str | None:
    """The admin API token saved in the home's secrets dir, if a managed server created one."""
    path = home.secrets / TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def resolve_api_key(home: Home) -> str:
    """The API key: ``$<review.api_key_env>``, else the managed server's token file."""
    env_name = home.config.review.api_key_env
    key = os.environ.get(env_name) or read_token(home)
    if not key:
        raise ReviewServiceError(f"no Label Studio API key for {home.config.review.url}: set ${env_name} "
                                 f"or run `data-engine labelstudio up` to create one")
    return key


def _write_state(data_dir: Path, info: ServerInfo) -> None:
    tmp = data_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(asdict(info)), encoding="utf-8")
    tmp.replace(data_dir / STATE_FILE)


def _is_label_studio(pid: int) -> bool:
    """Whether ``pid`` is alive and runs label-studio (a recycled pid must not be signalled)."""
    return runs_program(pid, b"label-studio")
