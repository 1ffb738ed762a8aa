"""Deployment: which model is the champion, its history, and the pointer file servers watch.

The ``deployments`` table is the history (promotions and rollbacks, never edited); the champion
stack is replayed from it, so a rollback always returns to the champion before the current one.

Servers never read the warehouse: they watch ``HOME/models/CHAMPION.json``, a small JSON file
naming the champion's artifact and sha256. It is written to a temp file in the same directory,
fsynced and renamed over the old one (``os.replace`` is atomic), so a reader sees the old pointer or
the new one, never half of either; artifacts themselves are immutable once written.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from data_engine.errors import EngineError
from data_engine.ship.registry import ModelRecord, current_champion, file_sha256, gate_record, get_model, set_status
from data_engine.store.config import EngineConfig
from data_engine.store.home import Home
from data_engine.store.warehouse import rollback_quietly

POINTER_NAME = "CHAMPION.json"


@dataclass(frozen=True)
class ChampionPointer:
    """What a server needs to load the champion, without the warehouse."""

    version: int
    artifact_path: str
    sha256: str
    classes: list[str]
    input_schema: dict[str, str]
    model_spec: str
    deployment_id: int
    # {learned name: current name}: classes renamed after the model was trained (``classes rename``
    # rewrites the pointer); the server answers with the current names (data_engine.ship.renamed).
    renamed: dict[str, str] = field(default_factory=dict)

    def artifact(self, home: Home) -> Path:
        """Absolute path of the artifact."""
        return home.models / self.artifact_path


@dataclass(frozen=True)
class Deployment:
    """One row of ``deployments``."""

    deployment_id: int
    action: str
    model_version: int
    previous_version: int | None
    reason: str | None
    actor: str
    created_at: Any = None


def pointer_path(home: Home) -> Path:
    """``HOME/models/CHAMPION.json``."""
    return home.models / POINTER_NAME


def write_pointer(home: Home, pointer: ChampionPointer) -> None:
    """Replace the pointer file atomically (temp file + fsync + os.replace)."""
    path = pointer_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".CHAMPION.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(pointer), fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_pointer(home: Home) -> ChampionPointer | None:
    """The current pointer, or None when nothing was ever deployed."""
    try:
        raw = json.loads(pointer_path(home).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EngineError(f"{pointer_path(home)}: damaged champion pointer ({exc}); run `data-engine deploy status`")
    try:
        pointer = ChampionPointer(**raw)
    except TypeError as exc:
        raise EngineError(f"{pointer_path(home)}: unexpected champion pointer fields ({exc})") from None
    # Artifacts live directly in the models directory: a pointer must not lead a server elsewhere.
    if Path(pointer.artifact_path).name != pointer.artifact_path or pointer.artifact_path in ("", ".", ".."):
        raise EngineError(f"{pointer_path(home)}: artifact path {pointer.artifact_path!r} is not a file name "
                          "in the models directory")
    return pointer


def _pointer_for(record: ModelRecord, deployment_id: int) -> ChampionPointer:
    return ChampionPointer(
        version=record.version, artifact_path=record.artifact_path, sha256=record.sha256,
        classes=list(record.classes), input_schema=dict(record.input_schema), model_spec=record.model_spec,
        deployment_id=deployment_id, renamed=dict(record.renamed),
    )


def _check_artifact(home: Home, record: ModelRecord) -> None:
    """Refuse to point servers at an artifact that is missing or does not match its sha256."""
    path = record.artifact(home)
    if not path.is_file():
        raise EngineError(f"model v{record.version}: artifact {path} is missing; cannot deploy it")
    actual = file_sha256(path)
    if actual != record.sha256:
        raise EngineError(f"model v{record.version}: artifact {path} does not match its recorded sha256; "
                          "refusing to deploy it")


def _switch(con: duckdb.DuckDBPyConnection, home: Home, target: ModelRecord, action: str, reason: str,
            actor: str, retire_status_reason: str) -> Deployment:
    """Make ``target`` the champion in one transaction, then move the pointer.

    The pointer moves only after the COMMIT: servers never serve a model the warehouse has not
    recorded as champion (a process killed between the two leaves the pointer on the previous
    champion, which keeps serving; :func:`sync_pointer` and the next promotion repair it).
    """
    _check_artifact(home, target)
    old = current_champion(con)
    con.execute("BEGIN TRANSACTION")
    try:
        if old is not None and old.version != target.version:
            set_status(con, old.version, "retired", retire_status_reason.format(new=target.version))
        set_status(con, target.version, "champion", reason)
        dep_id = int(con.execute(
            "INSERT INTO deployments (action, model_version, previous_version, reason, actor) "
            "VALUES (?, ?, ?, ?, ?) RETURNING deployment_id",
            [action, target.version, old.version if old else None, reason, actor],
        ).fetchone()[0])
        con.execute("COMMIT")
    except BaseException:
        rollback_quietly(con)
        raise
    try:
        write_pointer(home, _pointer_for(target, dep_id))
    except OSError as exc:
        raise EngineError(f"model v{target.version} is the champion, but {pointer_path(home)} could not be written "
                          f"({exc.strerror or exc}); servers keep the previous model until it is (free space, then "
                          f"`data-engine deploy status` shows it out of sync; the next promotion rewrites it)") from None
    return Deployment(dep_id, action, target.version, old.version if old else None, reason, actor)


def promote(con: duckdb.DuckDBPyConnection, home: Home, version: int, *, reason: str,
            actor: str = "engine") -> Deployment:
    """Make model ``version`` the champion (the gate's decision is the caller's; see :mod:`data_engine.ship.step`)."""
    target = get_model(con, version)
    current = current_champion(con)
    if current is not None and current.version == target.version:
        raise EngineError(f"model v{version} is already the champion")
    return _switch(con, home, target, "promote", reason, actor, "replaced by v{new}")


def promote_gated(con: duckdb.DuckDBPyConnection, home: Home, version: int, *,
                  actor: str = "engine") -> Deployment:
    """Promote ``version`` only if the gate passed it against the current champion.

    For a deploy step that runs after the gate (the `promotion_gate` check of the candidate's step): the
    gate's verdict is read from the ``gate_verdicts`` table instead of being computed again.
    """
    record = get_model(con, version)
    verdict = gate_record(con, version)
    if record.status != "candidate" or verdict is None or not verdict.passed:
        why = record.reason or "not evaluated yet"
        raise EngineError(f"model v{version} has not passed the gate (status {record.status}: {why})")
    champion = current_champion(con)
    if verdict.champion_version != (champion.version if champion else None):
        raise EngineError(f"model v{version} was not compared with the current champion v{champion.version}; "
                          "run the gate again")
    return promote(con, home, version, reason=verdict.reason, actor=actor)


def champion_stack(history: list[tuple[str, int]]) -> list[int]:
    """Replay ``[(action, model_version), ...]`` (oldest first) into the stack of champions. Pure.

    A promotion pushes its version; a rollback pops the current champion.
    """
    stack: list[int] = []
    for action, version in history:
        if action == "promote":
            stack.append(version)
        elif action == "rollback":
            if stack:
                stack.pop()
            if not stack or stack[-1] != version:  # history edited by hand: trust the row
                stack.append(version)
    return stack


def history(con: duckdb.DuckDBPyConnection) -> list[Deployment]:
    """Every deployment, oldest first."""
    rows = con.execute(
        "SELECT deployment_id, action, model_version, previous_version, reason, actor, created_at FROM deployments "
        "ORDER BY deployment_id"
    ).fetchall()
    return [Deployment(*r) for r in rows]


def rollback(con: duckdb.DuckDBPyConnection, home: Home, *, reason: str = "rollback requested",
             actor: str = "engine") -> Deployment:
    """Return to the champion before the current one."""
    stack = champion_stack([(d.action, d.model_version) for d in history(con)])
    if len(stack) < 2:
        raise EngineError("nothing to roll back to: there has been no champion before the current one")
    target = get_model(con, stack[-2])
    return _switch(con, home, target, "rollback", reason, actor, "rolled back to v{new}")


def sync_pointer(con: duckdb.DuckDBPyConnection, home: Home) -> ChampionPointer | None:
    """Rewrite the pointer from the warehouse if it disagrees (repairs a crash between the two)."""
    champ = current_champion(con)
    if champ is None:
        return None
    pointer = read_pointer(home)
    if (pointer is not None and pointer.version == champ.version and pointer.sha256 == champ.sha256
            and pointer.renamed == champ.renamed):
        return pointer
    last = con.execute("SELECT coalesce(max(deployment_id), 0) FROM deployments").fetchone()[0]
    fresh = _pointer_for(champ, int(last))
    write_pointer(home, fresh)
    return fresh


def status(con: duckdb.DuckDBPyConnection, home: Home, *, limit: int = 10) -> dict[str, Any]:
    """The champion, the pointer, the newest models and the deployment history (JSON-friendly)."""
    from data_engine.ship.registry import gate_records, list_models

    champ = current_champion(con)
    passed = {g.model_version: g.passed for g in gate_records(con)}
    pointer = read_pointer(home)
    return {
        "champion": champ.summary() if champ else None,
        "pointer": asdict(pointer) if pointer else None,
        "pointer_in_sync": (pointer is None and champ is None) or (
            pointer is not None and champ is not None and pointer.version == champ.version),
        "models": [{**m.summary(), "gate_passed": passed.get(m.version)} for m in list_models(con)[-limit:]],
        "deployments": [{**asdict(d), "created_at": str(d.created_at) if d.created_at is not None else None}
                        for d in history(con)[-limit:]],
    }
