"""An in-memory Label Studio for fast unit tests: projects, tasks and annotations kept in a dict,
behind the same :class:`~data_engine.review.labelstudio.client.ReviewClient` interface, and able to
fail like a real server does. Integration tests use the real server."""

from __future__ import annotations

import collections
import itertools
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from data_engine.errors import ReviewServiceError


class FakeReviewClient:
    """An in-memory :class:`ReviewClient` with Label Studio's semantics, for unit tests.

    ``fail_with`` makes every call raise that error (a server that is down); ``fail_on_import = n``
    makes the n-th import call store its tasks and then raise, like a connection lost before the reply.
    :meth:`delete_project`, :meth:`delete_task`, :meth:`delete_annotation` and :meth:`reset_database`
    do what a person (or a lost volume) does to a real server.
    """

    def __init__(self, url: str = "http://fake-label-studio") -> None:
        self.url = url
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)
        self.reset_database()

    def reset_database(self) -> None:
        """Forget everything, as a server restarted on a new database does: ids start again from 1,
        and the organisation gets a new creation time."""
        self.projects: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.annotations: dict[int, dict[str, Any]] = {}
        self.user_emails: dict[int, str] = {1: "admin@example.com"}
        self.fail_with: ReviewServiceError | None = None
        self.views: dict[int, dict[str, Any]] = {}
        self.fail_on_import = 0
        self.import_calls = 0
        self._requests = 0
        # One id sequence per kind, as the server's tables have: a new database starts them all at 1.
        self._ids = collections.defaultdict(lambda: itertools.count(1))
        self.organization_created = self._tick()

    @property
    def request_count(self) -> int:
        """Calls made so far (one per simulated request)."""
        return self._requests

    def close(self) -> None:
        """Nothing to release (the real client closes its connection pool)."""

    def _tick(self) -> str:
        # A strictly increasing server clock, so "updated after" is deterministic.
        self._clock += timedelta(milliseconds=1)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _enter(self) -> None:
        self._requests += 1
        if self.fail_with is not None:
            raise self.fail_with

    def check(self) -> str:
        """The fake admin's email."""
        self._enter()
        return self.user_emails[1]

    def find_project(self, title: str) -> int | None:
        """The project titled ``title``."""
        self._enter()
        return next((pid for pid, p in self.projects.items() if p["title"] == title), None)

    def project_info(self, project_id: int) -> dict[str, Any] | None:
        """The project's id, title and created_at (None once deleted)."""
        self._enter()
        p = self.projects.get(project_id)
        if p is None:
            return None
        tasks = list(self._project_tasks(project_id))
        return {"id": project_id, "title": p["title"], "created_at": p["created_at"], "tasks": len(tasks),
                "annotations": sum(len(t["annotation_ids"]) for t in tasks)}

    def server_identity(self) -> str:
        """The organisation of this (fake) database."""
        self._enter()
        return f"organization 1 created {self.organization_created}"

    def task_inventory(self, project_id: int, min_task_id: int) -> dict[int, dict[int, str | None]]:
        """Task id -> {annotation id -> created_at} of the project's tasks above ``min_task_id``."""
        self._enter()
        return {t["id"]: {a: self.annotations[a]["created_at"] for a in t["annotation_ids"]}
                for t in self._project_tasks(project_id) if t["id"] > min_task_id}

    def delete_project(self, project_id: int) -> None:
        """Delete a project with its tasks and annotations."""
        for tid in [t["id"] for t in self._project_tasks(project_id)]:
            self.delete_task(tid)
        del self.projects[project_id]

    def delete_task(self, task_id: int) -> None:
        """Delete a task with its annotations."""
        for aid in list(self.tasks[task_id]["annotation_ids"]):
            del self.annotations[aid]
        del self.tasks[task_id]

    def delete_annotation(self, annotation_id: int) -> None:
        """Delete an annotation (its task's updated_at is left as it was)."""
        ann = self.annotations.pop(annotation_id)
        self.tasks[ann["task"]]["annotation_ids"].remove(annotation_id)

    def create_project(self, title: str, label_config: str, *, description: str = "",
                       maximum_annotations: int = 1) -> int:
        """Create a project."""
        self._enter()
        pid = next(self._ids["project"])
        self.projects[pid] = {"title": title, "label_config": label_config, "description": description,
                              "maximum_annotations": maximum_annotations, "created_at": self._tick()}
        return pid

    def ensure_local_storage(self, project_id: int, path: str) -> int:
        """Record a local-files storage of ``path`` on the project (once per path)."""
        self._enter()
        storages = self.projects[project_id].setdefault("local_storages", [])
        if path not in storages:
            storages.append(path)
        return storages.index(path) + 1

    def create_view(self, project_id: int, data: dict[str, Any]) -> int:
        """Store a saved view of the project."""
        self._enter()
        vid = next(self._ids["view"])
        self.views[vid] = {"project": project_id, "data": dict(data)}
        return vid

    def import_tasks(self, project_id: int, tasks: Sequence[dict[str, Any]]) -> list[int]:
        """Store the tasks; maybe fail after storing (see ``fail_on_import``)."""
        self._enter()
        self.import_calls += 1
        if project_id not in self.projects:
            raise ReviewServiceError(f"Label Studio at {self.url} rejected importing into project {project_id}: HTTP 404")
        ids = []
        for task in tasks:
            tid = next(self._ids["task"])
            now = self._tick()
            self.tasks[tid] = {"id": tid, "project": project_id, "data": json.loads(json.dumps(task["data"])),
                               "predictions": task.get("predictions", []), "updated_at": now, "annotation_ids": []}
            ids.append(tid)
        if self.import_calls == self.fail_on_import:
            raise ReviewServiceError(f"Label Studio at {self.url} did not answer within 30 s (importing tasks)")
        return ids

    def _project_tasks(self, project_id: int) -> Iterator[dict[str, Any]]:
        return (t for _, t in sorted(self.tasks.items()) if t["project"] == project_id)

    def _public(self, task: dict[str, Any], with_annotations: bool) -> dict[str, Any]:
        # Like the real client: annotated tasks come back without their data.
        out = {"id": task["id"], "data": {} if with_annotations else task["data"], "updated_at": task["updated_at"]}
        if with_annotations:
            out["annotations"] = [dict(self.annotations[a]) for a in task["annotation_ids"]]
        return out

    def tasks_after(self, project_id: int, min_task_id: int) -> list[dict[str, Any]]:
        """Tasks with a greater id."""
        self._enter()
        return [self._public(t, False) for t in self._project_tasks(project_id) if t["id"] > min_task_id]

    def _counts(self, task: dict[str, Any]) -> tuple[int, int]:
        anns = [self.annotations[a] for a in task["annotation_ids"]]
        return sum(not a["was_cancelled"] for a in anns), sum(a["was_cancelled"] for a in anns)

    def annotated_tasks(self, project_id: int, updated_after: str | None) -> list[dict[str, Any]]:
        """Tasks with a non-cancelled annotation, updated after the cursor, oldest first."""
        self._enter()
        found = [t for t in self._project_tasks(project_id)
                 if self._counts(t)[0] > 0 and (updated_after is None or t["updated_at"] > updated_after)]
        return [self._public(t, True) for t in sorted(found, key=lambda t: t["updated_at"])]

    def annotated_page(self, project_id: int, updated_after: str | None, updated_until: str | None,
                       after_id: int, limit: int = 1000) -> list[dict[str, Any]]:
        """Annotated tasks of the window (after, until], id above ``after_id``, by id, at most ``limit``."""
        self._enter()
        found = [t for t in self._project_tasks(project_id)
                 if self._counts(t)[0] > 0 and t["id"] > after_id
                 and (updated_after is None or t["updated_at"] > updated_after)
                 and (updated_until is None or t["updated_at"] <= updated_until)]
        return [self._public(t, True) for t in sorted(found, key=lambda t: t["id"])[:limit]]

    def annotated_since(self, project_id: int, updated_after: str | None) -> tuple[int, str | None]:
        """Count and newest updated_at of annotated tasks after the cursor."""
        found = self.annotated_tasks(project_id, updated_after)
        return len(found), (found[-1]["updated_at"] if found else None)

    def open_tasks(self, project_id: int, limit: int | None = None) -> list[dict[str, Any]]:
        """Tasks without any annotation or skip."""
        self._enter()
        found = [self._public(t, False) for t in self._project_tasks(project_id) if self._counts(t) == (0, 0)]
        return found[:limit] if limit else found

    def create_annotation(self, task_id: int, result: list[dict[str, Any]], *, lead_time: float | None = None,
                          completed_by: int | None = None, was_cancelled: bool = False) -> int:
        """Add an annotation and bump the task's updated_at, as the server does."""
        self._enter()
        aid = next(self._ids["annotation"])
        now = self._tick()
        self.annotations[aid] = {"id": aid, "task": task_id, "completed_by": completed_by or 1, "result": result,
                                 "was_cancelled": was_cancelled, "lead_time": lead_time, "created_at": now,
                                 "updated_at": now}
        self.tasks[task_id]["annotation_ids"].append(aid)
        self.tasks[task_id]["updated_at"] = now
        return aid

    def accept_predictions(self, project_id: int, task_ids: Sequence[int]) -> int:
        """One annotation per prediction of ``task_ids`` (of the project) not yet turned into one, as
        the server's "Create Annotations From Predictions" action does, in one request."""
        self._enter()
        made = 0
        for tid in task_ids:
            task = self.tasks.get(int(tid))
            if task is None or task["project"] != project_id:
                continue
            for prediction in task["predictions"][task.get("accepted", 0):]:
                self._requests -= 1  # one request for the whole action
                self.create_annotation(task["id"], prediction["result"])
                made += 1
            task["accepted"] = len(task["predictions"])
        return made

    def update_annotation(self, annotation_id: int, result: list[dict[str, Any]]) -> None:
        """Edit an annotation and bump its task."""
        self._enter()
        now = self._tick()
        ann = self.annotations[annotation_id]
        ann.update(result=result, updated_at=now)
        self.tasks[ann["task"]]["updated_at"] = now

    def users(self) -> dict[int, str]:
        """Known users."""
        self._enter()
        return dict(self.user_emails)

    def ensure_user(self, email: str) -> int:
        """Find or add a user."""
        self._enter()
        for uid, known in self.user_emails.items():
            if known == email:
                return uid
        uid = max(self.user_emails) + 1
        self.user_emails[uid] = email
        return uid
