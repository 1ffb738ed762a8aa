"""Image files in the real Label Studio: a pushed task links the stored image, Label Studio serves it
from the engine home through the project's local-files storage (to its users only, and nothing
outside that storage), and a reviewer's browser shows it."""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from data_engine.review.labelstudio.server import PASSWORD_FILE, TOKEN_FILE
from data_engine.review.project import make_client
from data_engine.review.push import push_queue
from data_engine.store.warehouse import open_warehouse
from tests.image_support import image_files_home
from tests.review_support import make_queue

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "screenshot_review.py"


@pytest.fixture
def image_review_home(tmp_path: Path, label_studio, monkeypatch: pytest.MonkeyPatch):
    """An image-files home (12 digits) with a queue, pointing at the session's server."""
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    review = (f'[review]\nurl = "{label_studio.url}"\nproject_title = "img-{uuid.uuid4().hex[:10]}"\n'
              f'local_files_root = "{label_studio.document_root}"\n')
    home, manifest, _ = image_files_home(tmp_path, n=12, noise_every=3, extra_config=review)
    for name in (TOKEN_FILE, PASSWORD_FILE):
        shutil.copy(label_studio.secrets_dir / name, home.secrets / name)
        os.chmod(home.secrets / name, 0o600)
    make_queue(home, manifest.rename(columns={"label": "given_label"}))
    return home


def test_label_studio_serves_the_stored_image_of_a_task(image_review_home, label_studio) -> None:
    home = image_review_home
    client = make_client(home)
    with open_warehouse(home) as con:
        result = push_queue(con, client, home.config, limit=3)
    tasks = client.tasks_after(result.project_id, 0)
    assert result.sent == 3 and len(tasks) == 3
    url = tasks[0]["data"]["image"]
    assert url.startswith("/data/local-files/?d=") and "base64" not in url
    stored = label_studio.document_root / unquote(url.split("?d=", 1)[1])
    auth = {"Authorization": f"Token {label_studio.token}"}
    with httpx.Client(base_url=label_studio.url, timeout=60) as http:
        served = http.get(url, headers=auth)
        anonymous = http.get(url)
        secret = http.get("/data/local-files/?d=" + str((home.secrets / TOKEN_FILE).relative_to(
            label_studio.document_root)), headers=auth)
    assert served.status_code == 200 and served.content == stored.read_bytes()
    assert served.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert anonymous.status_code in (401, 403)
    # The home's other files are under the document root too, but in no storage: not served.
    assert secret.status_code == 404


@pytest.mark.browser
def test_a_reviewer_sees_the_image_of_an_image_file_task(image_review_home, tmp_path) -> None:
    home = image_review_home
    with open_warehouse(home) as con:
        push_queue(con, make_client(home), home.config, limit=2)
    spec = importlib.util.spec_from_file_location("screenshot_review", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # The script waits until an <img> served from local-files has loaded (naturalWidth > 0).
    out = module.screenshot(home, tmp_path / "image-task.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
