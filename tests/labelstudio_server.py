"""ONE real Label Studio server per test session: a free loopback port, a temporary data dir.

A plugin of the root conftest (``pytest_plugins``), so every folder's tests share the one server: a
conftest importing these fixtures would define a second session fixture, and start a second server.

The server comes from ``$DATA_ENGINE_LABEL_STUDIO_BIN`` or ``.venv-ls`` (``make setup``); if it is
missing the tests fail (they do not skip: a suite that silently skips its real server proves
nothing). Each test gets its own engine home and its own project (a unique title).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from data_engine.review.labelstudio.server import (
    TOKEN_FILE,
    ServerInfo,
    find_server_binary,
    free_port,
    health_ok,
    start_server,
    stop_pid,
)
from data_engine.store.home import Home
from tests.review_support import digits_home, make_queue

# A fresh data dir runs Label Studio's migrations: minutes on a loaded 2-core machine.
START_WAIT_S = 480.0


@dataclass
class LabelStudioUnderTest:
    """The session's server, with what a test needs to restart it."""

    info: ServerInfo
    data_dir: Path
    secrets_dir: Path
    # LOCAL_FILES_DOCUMENT_ROOT: the session's base temp folder, above every test's engine home
    # (their image files are served from there; see review.local_files_root).
    document_root: Path | None = None

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def token(self) -> str:
        return (self.secrets_dir / TOKEN_FILE).read_text(encoding="utf-8").strip()

    def stop(self) -> None:
        """Stop the server (SIGTERM)."""
        stop_pid(self.info.pid)

    def restart(self) -> None:
        """Start it again on the same port and data dir."""
        if not health_ok(self.url):
            self.info = start_server(self.data_dir, self.secrets_dir, self.info.port, wait_s=START_WAIT_S,
                                     document_root=self.document_root)


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudioUnderTest]:
    """Start the real server once for the session and stop it at the end."""
    find_server_binary()  # a clear error when it is not installed
    root = tmp_path_factory.mktemp("labelstudio")
    documents = tmp_path_factory.getbasetemp().resolve()
    server = LabelStudioUnderTest(
        info=start_server(root / "data", root / "secrets", free_port(), wait_s=START_WAIT_S, document_root=documents),
        data_dir=root / "data", secrets_dir=root / "secrets", document_root=documents)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def review_home(tmp_path: Path, label_studio: LabelStudioUnderTest, monkeypatch: pytest.MonkeyPatch):
    """Make a home (digits ingested, a queue) pointing at the session's server; call with n, **review."""
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)

    def make(n: int = 20, **review: object) -> tuple[Home, object]:
        settings = {"url": label_studio.url, "project_title": f"it-{uuid.uuid4().hex[:10]}", **review}
        home, frame = digits_home(tmp_path / "home", n=n, review=settings)
        # The home uses the server's admin token, kept like `labelstudio up` keeps it.
        shutil.copy(label_studio.secrets_dir / TOKEN_FILE, home.secrets / TOKEN_FILE)
        os.chmod(home.secrets / TOKEN_FILE, 0o600)
        make_queue(home, frame)
        return home, frame

    return make
