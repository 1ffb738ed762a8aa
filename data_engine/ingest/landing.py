"""The landing folder: which files are new, decided without touching the warehouse.

The landing sensor calls :func:`decide_landing`; it only reads the folder and its own cursor, so it
never contends with a run that holds the DuckDB write lock. Ingestion is idempotent by sha256, so
a file requested twice is harmless.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from data_engine.ingest.batch import sha256_file
from data_engine.ingest.readers import FORMATS

# A file modified less than this long ago may still be being written: wait for the next tick.
SETTLE_SECONDS = 2.0
# The landing subfolder of external predictions (Home.predictions_landing).
PREDICTIONS_DIR = "predictions"
# Dagster refuses partition keys containing these.
_BAD_KEY_PARTS = ("...", "\a", "\b", "\f", "\n", "\r", "\t", "\v", "\0")


@dataclass(frozen=True)
class LandedFile:
    """A file in the landing folder that is ready to ingest."""

    relpath: str
    sha256: str
    size: int

    @property
    def is_gold(self) -> bool:
        """Files under ``gold/`` are trusted evaluation data."""
        return self.relpath.startswith("gold/")


@dataclass
class LandingDecision:
    """What the sensor should do: the files to ingest, the new cursor, and why if nothing."""

    new_files: list[LandedFile]
    cursor: str
    skip_reason: str | None = None
    ignored: list[str] = field(default_factory=list)


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
    requested_shas = {entry[2] for entry in seen.values()}
    new: list[LandedFile] = []
    ignored: list[str] = []
    waiting = 0
    if landing.is_dir():
        for path in sorted(landing.rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(landing).as_posix()
            # predictions/ holds the user's model's probabilities (data_engine.mine.external), not examples.
            if (any(part.startswith(".") for part in rel.split("/")) or path.suffix.lower() not in FORMATS
                    or rel.startswith(f"{PREDICTIONS_DIR}/")):
                ignored.append(rel)
                continue
            if any(bad in rel for bad in _BAD_KEY_PARTS):
                ignored.append(rel)
                continue
            st = path.stat()
            if now - st.st_mtime < SETTLE_SECONDS:
                waiting += 1
                continue
            prev = seen.get(rel)
            if prev and prev[0] == st.st_size and prev[1] == st.st_mtime_ns:
                continue
            sha = sha256_file(path)
            seen[rel] = [st.st_size, st.st_mtime_ns, sha]
            if sha in requested_shas:
                continue
            requested_shas.add(sha)
            new.append(LandedFile(rel, sha, st.st_size))
    reason = None
    if not new:
        reason = f"no new files in {landing}" + (f" ({waiting} still being written)" if waiting else "")
    return LandingDecision(new, json.dumps(seen, sort_keys=True), reason, ignored)
