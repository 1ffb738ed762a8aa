"""The landing folder: which files are new, decided without touching the warehouse.

The landing sensor calls :func:`decide_landing`; it only reads the folder and its own cursor, so it
never contends with a run that holds the DuckDB write lock. Ingestion is idempotent by sha256, so
a file requested twice is harmless.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from data_engine.ingest.batch import sha256_file
from data_engine.ingest.readers import FORMATS, format_or_none

# A file modified less than this long ago may still be being written: wait for the next tick.
SETTLE_SECONDS = 2.0
# The landing subfolder of external predictions (Home.predictions_landing).
PREDICTIONS_DIR = "predictions"
# A path made only of these is its own partition key; any other gets a safe key (see partition_key).
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./ -]+")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def partition_key(relpath: str) -> str:
    """The Dagster partition key of a landed file: its path under landing/ when that is plain ASCII
    (letters, digits, ``_ . - /`` and spaces, no ``..``), else a readable ASCII form of it plus 8 hex
    digits of its sha1, so commas, ``...``, control and non-ASCII characters never reach Dagster."""
    if _PLAIN_KEY.fullmatch(relpath) and ".." not in relpath:
        return relpath
    readable = re.sub(r"\.{2,}", ".", _UNSAFE.sub("_", relpath)).strip("_")[:80]
    return f"{readable}~{hashlib.sha1(relpath.encode('utf-8')).hexdigest()[:8]}"


def landed_path(landing: Path, key: str) -> Path | None:
    """The file under ``landing`` whose :func:`partition_key` is ``key`` (None if it is gone)."""
    direct = landing / key
    if direct.is_file() and partition_key(key) == key:
        return direct
    for path in landing.rglob("*"):
        if path.is_file() and partition_key(path.relative_to(landing).as_posix()) == key:
            return path
    return None


def not_ingested_reason(rel: str) -> str | None:
    """Why the engine will not ingest the landed file ``rel`` (None: it will)."""
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith(f"{PREDICTIONS_DIR}/"):
        return "a model's predictions (read by mining with [mining] predictions = \"external\"), not examples"
    if any(part.startswith(".") for part in rel.split("/")):
        return "hidden file (a name starting with '.'; editors and uploads write these while working)"
    if format_or_none(Path(name)) is None:
        return f"not a data file the engine reads (expected {', '.join(sorted(FORMATS))})"
    return None


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing folder that is ready to ingest."""

    relpath: str
    sha256: str
    size: int

    @property
    def partition_key(self) -> str:
        """The file's Dagster partition key (see :func:`partition_key`)."""
        return partition_key(self.relpath)

    @property
    def is_gold(self) -> bool:
        """Files under ``gold/`` are trusted evaluation data."""
        return self.relpath.startswith("gold/")


@dataclass
class LandingDecision:
    """What the sensor should do: the files to ingest, the new cursor, and why if nothing;
    ``ignored`` maps each landed file the engine will not ingest to the reason."""

    new_files: list[LandedFile]
    cursor: str
    skip_reason: str | None = None
    ignored: dict[str, str] = field(default_factory=dict)


def _load_cursor(cursor: str | None) -> dict[str, list]:
    """``{relpath: [size, mtime_ns, sha256]}`` of files already requested."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        return {}


def decide_landing(landing: Path, cursor: str | None, *, now: float | None = None) -> LandingDecision:
    """Compare the landing folder with the cursor; a file is new when its bytes were not requested yet.

    Files are hashed again only when their size or mtime changed since the cursor saw them.
    """
    now = time.time() if now is None else now
    seen = _load_cursor(cursor)
    # sha256 -> the first file requested with those bytes (the same bytes again are not requested).
    requested_shas = {entry[2]: rel for rel, entry in sorted(seen.items(), reverse=True)}
    new: list[LandedFile] = []
    ignored: dict[str, str] = {}
    waiting = 0
    if landing.is_dir():
        for path in sorted(landing.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(landing).as_posix()
            why = not_ingested_reason(rel)
            if why:
                ignored[rel] = why
                continue
            st = path.stat()
            if now - st.st_mtime < SETTLE_SECONDS:
                waiting += 1
                continue
            prev = seen.get(rel)
            if prev and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
                sha = prev[2]
            else:
                sha = sha256_file(path)
                seen[rel] = [st.st_size, st.st_mtime_ns, sha]
                if sha not in requested_shas:
                    requested_shas[sha] = rel
                    new.append(LandedFile(rel, sha, st.st_size))
                    continue
            if requested_shas.get(sha, rel) != rel:
                ignored[rel] = f"the same bytes as {requested_shas[sha]}, already requested (a copy is not ingested twice)"
    reason = None
    if not new:
        reason = f"no new files in {landing}" + (f" ({waiting} still being written)" if waiting else "")
        if ignored:
            shown = "; ".join(f"{rel}: {why}" for rel, why in list(ignored.items())[:10])
            reason += f"; not ingested: {shown}" + (f" (and {len(ignored) - 10} more)" if len(ignored) > 10 else "")
    return LandingDecision(new, json.dumps(seen, sort_keys=True), reason, ignored)
