"""The landing folder: which files are new, decided without touching the warehouse.

The landing sensor calls :func:`decide_landing`; it only reads the folder and its own cursor, so it
never contends with a run that holds the DuckDB write lock. Ingestion is idempotent by sha256, so
a file requested twice is harmless.

What is read, and when (docs/ingest.md, "The landing folder"):

- A file is requested once it is *stable*: its size and modification time unchanged over two looks
  at least :data:`SETTLE_SECONDS` apart (the sensor's ticks), and not modified in the last
  :data:`SETTLE_SECONDS`. A writer that may pause longer writes to a name the engine ignores and
  renames it when done (atomic rename): names starting with ``.`` or ending in one of
  :data:`IN_PROGRESS_SUFFIXES` (``.part``, ``.tmp``, ...) are never read.
- Symbolic links are not followed out of the landing folder: such a link is refused with a one-line
  reason and nothing behind it is read (a link to a token file must not become a batch). A link to
  a folder is not entered.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from data_engine.ingest.batch import sha256_file
from data_engine.ingest.readers import FORMATS, format_or_none

# A file modified less than this long ago may still be being written: wait for the next tick. The
# two looks at an unchanged size and time are at least this far apart too.
SETTLE_SECONDS = 2.0
# Names of files still being written by tools that rename them when done (the atomic-rename convention).
IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".download", ".filepart", "~")
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
    """The file under ``landing`` whose :func:`partition_key` is ``key`` (None if it is gone, or a
    symbolic link out of the landing folder)."""
    direct = landing / key
    if direct.is_file() and partition_key(key) == key and link_reason(landing, direct) is None:
        return direct
    files, _ = landed_files(landing)
    return next((path for rel, path in files if partition_key(rel) == key), None)


def link_reason(landing: Path, path: Path) -> str | None:
    """Why ``path`` (inside ``landing``) is not read because of a symbolic link: it, or a folder on
    its way, is a link whose target lies outside ``landing`` (or nowhere). None: not such a link."""
    rel = path.relative_to(landing)
    linked = any((landing / part).is_symlink() for part in [*reversed(rel.parents)][1:]) or path.is_symlink()
    if not linked:
        return None
    target = path.resolve()
    if not target.exists():
        return "a symbolic link to nothing (broken link); not followed"
    if not target.is_relative_to(landing.resolve()):
        return ("a symbolic link leading out of the landing folder; not followed, nothing read "
                "(copy the file into the landing folder instead)")
    return None


def landed_files(landing: Path) -> tuple[list[tuple[str, Path]], dict[str, str]]:
    """The files under ``landing`` as ``[(relpath, path)]`` in path order, and ``{relpath: reason}``
    of the entries not read because of a symbolic link (see :func:`link_reason`).

    Symbolic links to folders are never entered (``os.walk`` without ``followlinks``), so nothing
    outside the landing folder is even listed.
    """
    files: list[tuple[str, Path]] = []
    refused: dict[str, str] = {}
    if not landing.is_dir():
        return files, refused
    for folder, dirs, names in os.walk(landing):
        base = Path(folder)
        for name in dirs:
            if (base / name).is_symlink():
                refused[(base / name).relative_to(landing).as_posix()] = (
                    "a symbolic link to a folder; not followed (land the files themselves)")
        for name in names:
            path = base / name
            rel = path.relative_to(landing).as_posix()
            why = link_reason(landing, path)
            if why:
                refused[rel] = why
            elif path.is_file():
                files.append((rel, path))
    files.sort()
    return files, dict(sorted(refused.items()))


def in_progress_reason(name: str) -> str | None:
    """Why a file named ``name`` is one still being written by the atomic-rename convention (a name
    ending in one of :data:`IN_PROGRESS_SUFFIXES`), or None. ``status``, the landing sensor and
    ``ingest FILE`` all judge a name by this one rule."""
    if not name.lower().endswith(IN_PROGRESS_SUFFIXES):
        return None
    return ("still being written (a name ending in " + ", ".join(IN_PROGRESS_SUFFIXES)
            + "): read once it is renamed to its final name")


def not_ingested_reason(rel: str) -> str | None:
    """Why the engine will not ingest the landed file ``rel`` (None: it will)."""
    name = rel.rsplit("/", 1)[-1]
    if rel.startswith(f"{PREDICTIONS_DIR}/"):
        return "a model's predictions (read by mining with [mining] predictions = \"external\"), not examples"
    if any(part.startswith(".") for part in rel.split("/")):
        return "hidden file (a name starting with '.'; editors and uploads write these while working)"
    if (why := in_progress_reason(name)):
        return why
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
    """``{relpath: [size, mtime_ns, sha256]}`` of files already requested, and
    ``{relpath: [size, mtime_ns, None, seen_at]}`` of files seen once (waiting for a second look)."""
    if not cursor:
        return {}
    try:
        data = json.loads(cursor)
        return data if isinstance(data, dict) else {}
    except json.JSONDecodeError:
        return {}


def decide_landing(landing: Path, cursor: str | None, *, now: float | None = None) -> LandingDecision:
    """Compare the landing folder with the cursor; a file is new when its bytes were not requested yet
    and it is stable (see the module docstring): a file seen for the first time, or with another
    size or time than at the last look, is only recorded in the cursor, and requested at a later
    look (at least :data:`SETTLE_SECONDS` on) that finds it unchanged.

    Files are hashed again only when their size or mtime changed since the cursor saw them.
    """
    now = time.time() if now is None else now
    seen = _load_cursor(cursor)
    # sha256 -> the first file requested with those bytes (the same bytes again are not requested).
    requested_shas = {entry[2]: rel for rel, entry in sorted(seen.items(), reverse=True) if entry[2]}
    new: list[LandedFile] = []
    files, ignored = landed_files(landing)
    waiting = 0
    for rel, path in files:
        why = not_ingested_reason(rel)
        if why:
            ignored[rel] = why
            continue
        st = path.stat()
        prev = seen.get(rel)
        same = bool(prev) and prev[0] == st.st_size and prev[1] == st.st_mtime_ns
        if not same or now - st.st_mtime < SETTLE_SECONDS:
            # First look at these bytes (or they are still changing): look again next tick.
            seen[rel] = [st.st_size, st.st_mtime_ns, None, now]
            waiting += 1
            continue
        if prev[2] is None:
            if now - prev[3] < SETTLE_SECONDS:
                waiting += 1
                continue
            sha = sha256_file(path)
            seen[rel] = [st.st_size, st.st_mtime_ns, sha]
            if sha not in requested_shas:
                requested_shas[sha] = rel
                new.append(LandedFile(rel, sha, st.st_size))
                continue
        sha = seen[rel][2]
        if requested_shas.get(sha, rel) != rel:
            ignored[rel] = f"the same bytes as {requested_shas[sha]}, already requested (a copy is not ingested twice)"
    # Files gone from the folder leave the cursor (a file landed again under that name is looked at anew).
    present = {rel for rel, _ in files}
    seen = {rel: entry for rel, entry in seen.items() if rel in present or entry[2]}
    reason = None
    if not new:
        reason = f"no new files in {landing}" + (
            f" ({waiting} not yet stable: size and time must stay the same over two looks "
            f"{SETTLE_SECONDS:g} s apart)" if waiting else "")
        if ignored:
            shown = "; ".join(f"{rel}: {why}" for rel, why in list(ignored.items())[:10])
            reason += f"; not ingested: {shown}" + (f" (and {len(ignored) - 10} more)" if len(ignored) > 10 else "")
    return LandingDecision(new, json.dumps(seen, sort_keys=True), reason, ignored)
