"""Screenshot what a reviewer sees: one review task in the real Label Studio, in headless Chromium.

    python scripts/screenshot_review.py --home .data-engine [--out docs/review-task.png] [--task ID]
    python scripts/screenshot_review.py --home .data-engine --view [--project ID] --out view.png

Needs the home's Label Studio running (`data-engine labelstudio up`) and a pushed queue
(`data-engine review push`). Logs in as the engine's admin (password from the home's secrets
dir), opens the task in the project's Data Manager and saves a PNG. With ``--view`` it opens the
project's Data Manager on its first tab (the engine's saved view) instead, prints how long the
first page of tasks took to arrive and show, and saves a PNG of it. Drives the system Chromium
(/usr/bin/chromium, or $CHROMIUM) through Python Playwright; it never downloads a browser.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_engine.review.labelstudio.server import ADMIN_EMAIL, PASSWORD_FILE  # noqa: E402
from data_engine.review.project import make_client, project_title  # noqa: E402
from data_engine.store.home import Home  # noqa: E402

# Flags that work as root in a container without outside network (see STACK.md): no sandbox, no
# GPU, and no background calls to Google services that the network refuses.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def pick_task(home: Home, task_id: int | None) -> tuple[int, int]:
    """The project id and a task to show: ``task_id``, else the first task flagged as a label issue."""
    client = make_client(home)
    project_id = client.find_project(project_title(home.config))
    if project_id is None:
        raise SystemExit(f"no review project at {client.url}; run `data-engine review push` first")
    if task_id is not None:
        return project_id, task_id
    tasks = client.tasks_after(project_id, 0)
    if not tasks:
        raise SystemExit(f"project {project_id} has no tasks; run `data-engine review push` first")
    flagged = [t for t in tasks if "label" in str(t["data"].get("issue_types", "")).split(", ")]
    return project_id, (flagged or tasks)[0]["id"]


@contextmanager
def logged_in_page(home: Home, width: int = 1280, height: int = 860) -> Iterator[Any]:
    """A page of headless Chromium logged in to the home's Label Studio as the engine's admin."""
    from playwright.sync_api import sync_playwright

    url = home.config.review.url.rstrip("/")
    password = (home.secrets / PASSWORD_FILE).read_text(encoding="utf-8").strip()
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile, sync_playwright() as pw:
        # A fresh profile per run (Playwright wants it as user_data_dir, not as a flag).
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"), headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": width, "height": height})
        try:
            page = context.new_page()
            page.goto(f"{url}/user/login/", wait_until="domcontentloaded")
            page.fill("input[name=email]", ADMIN_EMAIL)
            page.fill("input[name=password]", password)
            page.click("button[type=submit]")
            page.wait_for_url(lambda u: "/user/login" not in u, timeout=60_000)
            yield page
        finally:
            context.close()


def screenshot(home: Home, out: Path, task_id: int | None = None, width: int = 1280, height: int = 860) -> Path:
    """Log in, open the task, wait for the image (image data) and the choices, save ``out``."""
    project_id, task_id = pick_task(home, task_id)
    url = home.config.review.url.rstrip("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    with logged_in_page(home, width, height) as page:
        page.goto(f"{url}/projects/{project_id}/data?task={task_id}", wait_until="domcontentloaded")
        # The labeling view is ready when the image (inlined pixels, or a file served from the
        # home's local-files storage) has loaded, for image data, and the choices are listed.
        if home.config.dataset.modality == "image":
            page.wait_for_function(
                "() => [...document.querySelectorAll('img')].some(i => i.complete && i.naturalWidth > 0 && "
                "(i.src.startsWith('data:image/png') || i.src.includes('local-files')))", timeout=90_000)
        page.wait_for_selector("text=not a valid example", timeout=90_000)
        page.wait_for_timeout(1500)  # let the prediction tab and fonts settle
        page.screenshot(path=str(out))
    return out


def view_seconds(home: Home, out: Path, project_id: int | None = None) -> tuple[Path, float]:
    """Open the project's Data Manager (its first tab: the engine's saved view), wait until the
    first page of tasks has arrived and its rows show, save ``out``; return it and the seconds
    from opening the page to the rows showing."""
    if project_id is None:
        project_id = make_client(home).find_project(project_title(home.config))
        if project_id is None:
            raise SystemExit(f"no review project at {home.config.review.url}; run `data-engine review push` first")
    url = home.config.review.url.rstrip("/")
    out.parent.mkdir(parents=True, exist_ok=True)
    with logged_in_page(home) as page:
        started = time.perf_counter()
        with page.expect_response(lambda r: "/api/tasks" in r.url and r.status == 200, timeout=300_000):
            page.goto(f"{url}/projects/{project_id}/data", wait_until="domcontentloaded")
        # Rendered: the table shows rows of the page that arrived.
        page.wait_for_function("() => document.querySelectorAll('[class*=\"table\"] [class*=\"row\"]').length > 2",
                               timeout=300_000)
        seconds = time.perf_counter() - started
        page.wait_for_timeout(1000)
        page.screenshot(path=str(out))
    return out, seconds


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", default=None, help="the engine home (default: $DATA_ENGINE_HOME or ./.data-engine)")
    parser.add_argument("--out", type=Path, default=Path("docs/review-task.png"))
    parser.add_argument("--task", type=int, default=None, help="the Label Studio task id to show")
    parser.add_argument("--view", action="store_true", help="time and show the Data Manager's saved view instead")
    parser.add_argument("--project", type=int, default=None, help="the project id (default: the home's project)")
    args = parser.parse_args(argv)
    if args.view:
        path, seconds = view_seconds(Home.resolve(args.home), args.out, args.project)
        print(f"wrote {path}: the saved view's first page showed {seconds:.1f} s after opening the Data Manager")
        return 0
    path = screenshot(Home.resolve(args.home), args.out, args.task)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
