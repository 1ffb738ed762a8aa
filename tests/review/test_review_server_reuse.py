"""A Label Studio already answering on review.url is used, not started again (whoever started it),
and a port held by another program is one line that says so."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from data_engine.errors import EngineError, ReviewServiceError
from data_engine.review import project
from data_engine.review.labelstudio import server
from data_engine.review.labelstudio.fake import FakeReviewClient
from tests.homes import make_home


class _Health(BaseHTTPRequestHandler):
    """Answers ``/health`` as a running Label Studio does."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def healthy_port() -> Iterator[int]:
    httpd = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd.server_address[1]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _home_on(tmp_path: Path, port: int):
    return make_home(tmp_path, {"review": {"url": f"http://127.0.0.1:{port}"}})


def test_a_label_studio_answering_with_the_key_is_used_not_started(tmp_path, healthy_port, monkeypatch):
    home = _home_on(tmp_path, healthy_port)
    monkeypatch.setattr(project, "make_client", lambda _home: FakeReviewClient())

    def no_start(*_a, **_k):
        raise AssertionError("started a second Label Studio on a port that already has one")

    monkeypatch.setattr(server, "ensure_server", no_start)
    said = project.review_server(home)
    assert said == f"http://127.0.0.1:{healthy_port} (already running, not this home's; used as admin@example.com)"


def test_a_label_studio_refusing_the_key_is_one_line_naming_the_url(tmp_path, healthy_port, monkeypatch):
    home = _home_on(tmp_path, healthy_port)
    refusing = FakeReviewClient()
    refusing.fail_with = ReviewServiceError("Label Studio refused the API key (HTTP 401)")
    monkeypatch.setattr(project, "make_client", lambda _home: refusing)
    with pytest.raises(EngineError) as err:
        project.review_server(home)
    message = str(err.value)
    assert "\n" not in message and "HTTP 401" in message
    assert f"did not start answers at http://127.0.0.1:{healthy_port}" in message


def test_a_port_held_by_another_program_says_so(tmp_path):
    exe = tmp_path / "label-studio"
    exe.write_text("#!/bin/sh\nexit 1\n")
    exe.chmod(0o755)
    with socket.socket() as sock:  # listens, answers nothing: not a Label Studio
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(EngineError, match=f"port {port} .* in use by a program that is not Label Studio"):
            server.start_server(tmp_path / "data", tmp_path / "secrets", port, binary=exe)


class _OtherRoot(FakeReviewClient):
    """A server whose document root does not hold this home: Label Studio answers a bare 400."""

    def ensure_local_storage(self, project_id: int, path: str) -> int:
        raise ReviewServiceError(f"Label Studio at http://127.0.0.1:8122 rejected setting up local-files storage "
                                 f"{path} for project {project_id}: HTTP 400")


def test_another_homes_server_that_cannot_serve_this_homes_images_says_how_to_fix_it(tmp_path: Path) -> None:
    from data_engine.store.warehouse import open_warehouse

    home = make_home(tmp_path, {"review": {"url": "http://127.0.0.1:8122"}})
    with open_warehouse(home) as con, pytest.raises(ReviewServiceError) as caught:
        project.connect_images(con, _OtherRoot(), 2)
    folder = home.root / "images"
    assert str(caught.value) == (
        f"Label Studio at http://127.0.0.1:8122 rejected setting up local-files storage {folder} for project 2: "
        f"HTTP 400. Label Studio serves image files only from under its document root (LOCAL_FILES_DOCUMENT_ROOT), "
        f"and {folder} is not under this server's: give this home its own server (another port in [review] url, "
        "then `data-engine labelstudio up`), or run one whose document root holds this home and set [review] "
        "local_files_root to that root")
