"""The engine's view of Label Studio: a small interface and the real client.

:class:`ReviewClient` lists the few calls the engine makes. :class:`LabelStudioClient` implements
them over label-studio-sdk 2.x with a timeout, no automatic retries (a retried import could
duplicate tasks; push reconciles instead) and a request counter; every failure becomes a
:class:`ReviewServiceError` whose one-line message names the URL and the cause, never the key.
:class:`~data_engine.review.labelstudio.fake.FakeReviewClient` implements the same calls in memory
for fast unit tests.

Tasks and annotations cross this interface as plain dicts::

    task       = {"id": int, "data": dict, "updated_at": str, "annotations": [annotation, ...]}
    annotation = {"id": int, "completed_by": int, "result": list, "was_cancelled": bool,
                  "lead_time": float | None, "created_at": str, "updated_at": str}
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from data_engine.errors import ReviewServiceError

T = TypeVar("T")


# Task and annotation fields a pull needs (see LabelStudioClient._list_tasks).
_ANNOTATED_FIELDS = "id,updated_at,annotations,result,completed_by,was_cancelled,lead_time,created_at"


# Tasks per page when reading back: big pages, few requests (2,000 annotated tasks = 2 pages).
PAGE_SIZE = 1000


class ReviewClient(Protocol):
    """What the engine needs from a review server."""

    url: str

    @property
    def request_count(self) -> int:
        """HTTP requests made so far (for the benchmark)."""

    def close(self) -> None:
        """Release connections."""

    def check(self) -> str:
        """Verify the server answers and accepts the key; return the key owner's email."""

    def find_project(self, title: str) -> int | None:
        """The id of the project titled ``title``, if there is one."""

    def project_info(self, project_id: int) -> dict[str, Any] | None:
        """Project ``project_id`` as ``{"id", "title", "created_at", "tasks", "annotations"}`` (its task
        and annotation counts; None when the server has no such project)."""

    def server_identity(self) -> str:
        """What identifies this server's database: its organisation's id and creation time (a server
        restarted on a new database has a new one, even on the same URL and with the same ids)."""

    def task_inventory(self, project_id: int, min_task_id: int) -> dict[int, dict[int, str | None]]:
        """Every task of the project with an id above ``min_task_id``: task id -> {annotation id ->
        annotation created_at} (cancelled annotations included)."""

    def create_project(self, title: str, label_config: str, *, description: str = "",
                       maximum_annotations: int = 1) -> int:
        """Create a project; return its id."""

    def ensure_local_storage(self, project_id: int, path: str) -> int:
        """The project's local-files storage of folder ``path`` (created if missing); return its id."""

    def create_view(self, project_id: int, data: dict[str, Any]) -> int:
        """Save a Data Manager view (tab) of project ``project_id``: ``data`` holds its title,
        filters, ordering and column display types, as the Data Manager stores them; return its id."""

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Import ``tasks`` (with ``data`` and ``predictions``) in ONE request; return their ids in order."""

    def tasks_after(self, project_id: int, min_task_id: int) -> list[dict[str, Any]]:
        """Tasks with id greater than ``min_task_id`` (id and data only), by id."""

    def annotated_tasks(self, project_id: int, updated_after: str | None) -> list[dict[str, Any]]:
        """Tasks with at least one annotation, updated after ``updated_after`` (ISO time), with annotations."""

    def annotated_since(self, project_id: int, updated_after: str | None) -> tuple[int, str | None]:
        """How many annotated tasks were updated after ``updated_after``, and the newest updated_at (one request)."""

    def annotated_page(self, project_id: int, updated_after: str | None, updated_until: str | None,
                       after_id: int, limit: int) -> list[dict[str, Any]]:
        """At most ``limit`` annotated tasks with id greater than ``after_id`` and updated in
        (``updated_after``, ``updated_until``] (ISO times; None = unbounded), by id, with annotations."""

    def open_tasks(self, project_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Tasks nobody has annotated or skipped yet (id and data), by id."""

    def create_annotation(self, task_id: int, result: list[dict[str, Any]], *, lead_time: float | None = None,
                          completed_by: int | None = None, was_cancelled: bool = False) -> int:
        """Annotate a task as a reviewer would in the UI; return the annotation id."""

    def update_annotation(self, annotation_id: int, result: list[dict[str, Any]]) -> None:
        """Change an existing annotation's result."""

    def users(self) -> dict[int, str]:
        """User id -> email of every user of the organisation."""

    def ensure_user(self, email: str) -> int:
        """The id of the user with ``email``, created (without a password) if missing."""


class LabelStudioClient:
    """:class:`ReviewClient` over label-studio-sdk 2.x."""

    def __init__(self, url: str, api_key: str, *, timeout_s: float = 30.0, key_name: str = "the API key",
                 transport: Any = None) -> None:
        """``transport`` (an ``httpx.BaseTransport``) replaces the network, for tests of the error mapping."""
        import httpx
        from label_studio_sdk import LabelStudio

        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        # Named in error messages ("check $LABEL_STUDIO_API_KEY"); the key itself never is.
        self._key_name = key_name
        self._requests = 0
        self._lock = threading.Lock()  # the simulator annotates from several threads
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_s), event_hooks={"request": [self._count]},
                                  transport=transport)
        self._sdk = LabelStudio(base_url=self.url, api_key=api_key, httpx_client=self._http, max_retries=0,
                                timeout=timeout_s)

    def __repr__(self) -> str:
        return f"LabelStudioClient(url={self.url!r})"

    def _count(self, _request: Any) -> None:
        with self._lock:
            self._requests += 1

    @property
    def request_count(self) -> int:
        """HTTP requests made so far."""
        return self._requests

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SDK call, mapping every transport or HTTP failure to a one-line ReviewServiceError."""
        import httpx
        from label_studio_sdk.core.api_error import ApiError

        try:
            return fn()
        except httpx.TimeoutException:
            raise ReviewServiceError(
                f"Label Studio at {self.url} did not answer within {self.timeout_s:g} s ({what})") from None
        except httpx.ConnectError:
            raise ReviewServiceError(
                f"cannot reach Label Studio at {self.url}: connection refused ({what}); is it running? "
                f"try `data-engine labelstudio up`") from None
        except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
            # A server stopped (or a proxy failing) mid-request: the connection closes with no answer.
            raise ReviewServiceError(
                f"cannot talk to Label Studio at {self.url}: the connection closed without an answer "
                f"({type(exc).__name__}, {what}); is it running?") from None
        except httpx.HTTPError as exc:
            raise ReviewServiceError(
                f"cannot talk to Label Studio at {self.url}: {type(exc).__name__} ({what})") from None
        except ApiError as exc:
            raise self._http_error(what, exc.status_code, exc.body) from None

    def _http_error(self, what: str, status: int | None, body: Any) -> ReviewServiceError:
        if status in (401, 403):
            return ReviewServiceError(
                f"Label Studio at {self.url} refused the API key (HTTP {status}) while {what}; check {self._key_name}")
        if status is not None and status >= 500:
            return ReviewServiceError(f"Label Studio at {self.url} failed with HTTP {status} while {what}; try again later")
        detail = _short(body)
        return ReviewServiceError(f"Label Studio at {self.url} rejected {what}: HTTP {status}{': ' + detail if detail else ''}")

    def check(self) -> str:
        """Verify the server answers and accepts the key; return the key owner's email."""
        me = self._call("checking the API key", lambda: self._sdk.users.whoami())
        return str(me.email)

    def find_project(self, title: str) -> int | None:
        """The id of the (first) project titled ``title``."""
        def run() -> int | None:
            for project in self._sdk.projects.list(title=title, page_size=100):
                if project.title == title:
                    return int(project.id)
            return None

        return self._call(f"looking up project {title!r}", run)

    def project_info(self, project_id: int) -> dict[str, Any] | None:
        """Project ``project_id``'s id, title and created_at (404 -> None)."""
        from label_studio_sdk.core.api_error import ApiError

        def run() -> dict[str, Any] | None:
            try:
                project = self._sdk.projects.get(id=project_id)
            except ApiError as exc:
                if exc.status_code == 404:
                    return None
                raise
            return {"id": int(project.id), "title": project.title, "created_at": _iso(project.created_at),
                    "tasks": project.task_number, "annotations": project.total_annotations_number}

        return self._call(f"reading project {project_id}", run)

    def server_identity(self) -> str:
        """``organization <id> created <time>`` of the key owner's active organisation: Label Studio
        creates it with its database (the first user's sign-up), so a new database gives a new time
        even when the URL, the ids and the token are the same. ``/api/version`` names the release
        only, the same for every instance."""
        def run() -> str:
            org_id = self._sdk.users.whoami().active_organization
            # The list names each organisation's id and creation time only (the detail page would
            # also carry its invite token, which has no business here).
            created = {int(o.id): o.created_at for o in self._sdk.organizations.list() if o.id is not None}
            return f"organization {org_id} created {_iso(created.get(int(org_id))) if org_id is not None else None}"

        return self._call("reading the server's organization", run)

    def task_inventory(self, project_id: int, min_task_id: int) -> dict[int, dict[int, str | None]]:
        """Task ids with their annotations' ids and creation times: one Data Manager listing of ids
        only (no data, no results), 1,000 tasks a page."""
        rows = self._list_tasks(f"listing the tasks of project {project_id}", project_id,
                                [_filter("tasks:id", "greater", "Number", int(min_task_id))],
                                with_annotations=True, include="id,annotations,created_at")
        return {t["id"]: {a["id"]: a["created_at"] for a in t["annotations"]} for t in rows}

    def create_project(self, title: str, label_config: str, *, description: str = "",
                       maximum_annotations: int = 1) -> int:
        """Create a project; return its id."""
        project = self._call(f"creating project {title!r}", lambda: self._sdk.projects.create(
            title=title, label_config=label_config, description=description,
            maximum_annotations=maximum_annotations, show_skip_button=True, show_collab_predictions=True))
        return int(project.id)

    def ensure_local_storage(self, project_id: int, path: str) -> int:
        """A local-files import storage of ``path`` on the project: it is what lets Label Studio serve
        the files under ``path`` (``/data/local-files/?d=...``) to the project's reviewers. It is never
        synced: the engine imports its own tasks."""
        def run() -> int:
            for storage in self._sdk.import_storage.local.list(project=project_id):
                if str(getattr(storage, "path", "")).rstrip("/") == path.rstrip("/"):
                    return int(storage.id)
            created = self._sdk.import_storage.local.create(
                project=project_id, path=path, title="data-engine images", use_blob_urls=True,
                description="Image files of the engine home, served to reviewers; tasks come from the engine.")
            return int(created.id)

        return self._call(f"setting up local-files storage {path} for project {project_id}", run)

    def create_view(self, project_id: int, data: dict[str, Any]) -> int:
        """A saved Data Manager view, through the SDK's ``views`` API."""
        view = self._call(f"saving view {data.get('title')!r} of project {project_id}",
                          lambda: self._sdk.views.create(project=project_id, data=data))
        return int(view.id)

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """One bulk import; the server returns the new task ids in input order."""
        response = self._call(f"importing {len(tasks)} tasks into project {project_id}", lambda: self._sdk.projects.import_tasks(
            id=project_id, request=list(tasks), return_task_ids=True, commit_to_project=True))
        ids = list(response.task_ids or [])
        if len(ids) != len(tasks):
            raise ReviewServiceError(f"Label Studio at {self.url} created {len(ids)} tasks for {len(tasks)} sent "
                                     f"to project {project_id}; the next push reconciles")
        return [int(i) for i in ids]

    def _list_tasks(self, what: str, project_id: int, items: list[dict[str, Any]], *, ordering: str = "tasks:id",
                    with_annotations: bool = False, limit: int | None = None,
                    include: str | None = None) -> list[dict[str, Any]]:
        query = json.dumps({"filters": {"conjunction": "and", "items": items}, "ordering": [ordering]})
        # `include` names the task AND annotation fields to serialise: leaving out the data (base64
        # images), predictions and the Data Manager's extra columns makes reading 2,000 annotated
        # tasks about 2.5x faster than fields=all.
        include = include or (_ANNOTATED_FIELDS if with_annotations else "id,data,updated_at")

        def run() -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            page = 1
            size = min(PAGE_SIZE, limit) if limit else PAGE_SIZE
            while True:
                # One page at a time, stopping at the reported total: the SDK pager asks for one
                # page past the end, which this server answers with 404 "Invalid page".
                pager = self._sdk.tasks.list(project=project_id, query=query, page=page, page_size=size,
                                             include=include)
                batch = list(pager.items or [])
                out.extend(_task_dict(task, with_annotations) for task in batch)
                total = getattr(pager.response, "total", None) if pager.response is not None else None
                if (len(batch) < size or (total is not None and len(out) >= int(total))
                        or (limit and len(out) >= limit)):
                    break
                page += 1
            return out[:limit] if limit else out

        return self._call(what, run)

    def tasks_after(self, project_id: int, min_task_id: int) -> list[dict[str, Any]]:
        """Tasks with id greater than ``min_task_id``."""
        return self._list_tasks(f"listing tasks of project {project_id}", project_id,
                                [_filter("tasks:id", "greater", "Number", int(min_task_id))])

    def annotated_tasks(self, project_id: int, updated_after: str | None) -> list[dict[str, Any]]:
        """Annotated tasks updated after ``updated_after`` (a Data Manager filter; ``only_annotated`` is ignored)."""
        items = [_filter("tasks:total_annotations", "greater", "Number", 0)]
        if updated_after:
            items.append(_filter("tasks:updated_at", "greater", "Datetime", updated_after))
        return self._list_tasks(f"reading annotated tasks of project {project_id}", project_id, items,
                                ordering="tasks:updated_at", with_annotations=True)

    def annotated_page(self, project_id: int, updated_after: str | None, updated_until: str | None,
                       after_id: int, limit: int = PAGE_SIZE) -> list[dict[str, Any]]:
        """One page of a pull: annotated tasks of a fixed time window, keyed by id (``id > after_id``,
        by id), so tasks answered while the pull reads neither shift the pages (as offset paging
        would) nor slip in: their updated_at falls after the window, and the next pull reads them."""
        items = [_filter("tasks:total_annotations", "greater", "Number", 0),
                 _filter("tasks:id", "greater", "Number", int(after_id))]
        if updated_after:
            items.append(_filter("tasks:updated_at", "greater", "Datetime", updated_after))
        if updated_until:
            items.append(_filter("tasks:updated_at", "less_or_equal", "Datetime", updated_until))
        return self._list_tasks(f"reading annotated tasks of project {project_id} after task {after_id}", project_id,
                                items, ordering="tasks:id", with_annotations=True, limit=limit)

    def annotated_since(self, project_id: int, updated_after: str | None) -> tuple[int, str | None]:
        """Count and newest updated_at of annotated tasks after the cursor: one small request for a sensor."""
        items = [_filter("tasks:total_annotations", "greater", "Number", 0)]
        if updated_after:
            items.append(_filter("tasks:updated_at", "greater", "Datetime", updated_after))
        query = json.dumps({"filters": {"conjunction": "and", "items": items}, "ordering": ["-tasks:updated_at"]})

        def run() -> tuple[int, str | None]:
            pager = self._sdk.tasks.list(project=project_id, query=query, page=1, page_size=1, fields="task_only")
            first = list(pager.items or [])
            total = getattr(pager.response, "total", None) if pager.response is not None else None
            return (int(total) if total is not None else len(first)), (_iso(first[0].updated_at) if first else None)

        return self._call(f"checking for new verdicts in project {project_id}", run)

    def open_tasks(self, project_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Tasks without annotations or skips."""
        items = [_filter("tasks:total_annotations", "equal", "Number", 0),
                 _filter("tasks:cancelled_annotations", "equal", "Number", 0)]
        return self._list_tasks(f"listing open tasks of project {project_id}", project_id, items, limit=limit)

    def create_annotation(self, task_id: int, result: list[dict[str, Any]], *, lead_time: float | None = None,
                          completed_by: int | None = None, was_cancelled: bool = False) -> int:
        """POST one annotation."""
        extra: dict[str, Any] = {}
        if completed_by is not None:
            extra["completed_by"] = completed_by
        if lead_time is not None:
            extra["lead_time"] = lead_time
        ann = self._call(f"annotating task {task_id}", lambda: self._sdk.annotations.create(
            id=task_id, result=result, was_cancelled=was_cancelled, **extra))
        return int(ann.id)

    def accept_predictions(self, project_id: int, task_ids: Sequence[int]) -> int:
        """Annotate ``task_ids`` with their predictions in ONE request (the Data Manager action
        "Create Annotations From Predictions", as a reviewer accepting each suggestion); return how
        many annotations were created. ``bench review``'s bulk answers (one POST each: 4-15 a second)."""
        import re

        selected = {"all": False, "included": [int(t) for t in task_ids]}
        response = self._call(f"accepting the predictions of {len(task_ids)} tasks of project {project_id}",
                              lambda: self._sdk.actions.with_raw_response.create(
                                  id="predictions_to_annotations", project=project_id, selected_items=selected))
        # The action answers {"detail": "Created N annotations"} (label_studio/data_manager/actions).
        found = re.search(r"Created (\d+) annotations", response.response.text)
        if found is None:
            raise ReviewServiceError(f"Label Studio at {self.url} did not say how many annotations it created "
                                     f"from predictions in project {project_id}")
        return int(found.group(1))

    def update_annotation(self, annotation_id: int, result: list[dict[str, Any]]) -> None:
        """PATCH one annotation's result."""
        self._call(f"updating annotation {annotation_id}",
                   lambda: self._sdk.annotations.update(id=annotation_id, result=result))

    def users(self) -> dict[int, str]:
        """User id -> email."""
        return self._call("listing users", lambda: {int(u.id): str(u.email) for u in self._sdk.users.list()})

    def ensure_user(self, email: str) -> int:
        """Find or create the user ``email`` (a simulated second reviewer)."""
        for uid, known in self.users().items():
            if known == email:
                return uid
        user = self._call(f"creating user {email}", lambda: self._sdk.users.create(
            username=email.split("@")[0], email=email))
        return int(user.id)


def _filter(column: str, operator: str, kind: str, value: Any) -> dict[str, Any]:
    """One Data Manager filter item (see label_studio_sdk.data_manager.Filters.item)."""
    return {"filter": f"filter:{column}", "operator": operator, "type": kind, "value": value}


def _task_dict(task: Any, with_annotations: bool) -> dict[str, Any]:
    """An SDK task object as the plain dict this interface promises."""
    out: dict[str, Any] = {"id": int(task.id), "data": dict(task.data or {}), "updated_at": _iso(task.updated_at)}
    if with_annotations:
        out["annotations"] = [_annotation_dict(a) for a in (task.annotations or [])]
    return out


def _annotation_dict(ann: Any) -> dict[str, Any]:
    get = ann.get if isinstance(ann, dict) else lambda k, d=None: getattr(ann, k, d)
    completed_by = get("completed_by")
    if isinstance(completed_by, dict):  # some server versions expand the user
        completed_by = completed_by.get("id")
    # Values that are not what the server should send stay as sent: the pull skips and names them.
    return {"id": _int_or_raw(get("id")), "completed_by": _int_or_raw(completed_by),
            "result": list(get("result") or []), "was_cancelled": bool(get("was_cancelled", False)),
            "lead_time": get("lead_time"), "created_at": _iso(get("created_at")), "updated_at": _iso(get("updated_at"))}


def _int_or_raw(value: Any) -> Any:
    """``value`` as an int when it is one (or its decimal text), else unchanged."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _iso(value: Any) -> str | None:
    """A server time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (strings from the server already are)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return str(value)


def _short(body: Any, limit: int = 160) -> str:
    """A one-line excerpt of an error body."""
    text = body if isinstance(body, str) else json.dumps(body, default=str) if body is not None else ""
    text = " ".join(text.split())
    return text[:limit] + ("..." if len(text) > limit else "")
