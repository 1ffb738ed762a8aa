"""Where the engine keeps image files: ``HOME/images/<sha256[:2]>/<sha256>.<ext>``, one copy per content.

Ingest (:mod:`data_engine.ingest.images`) copies every accepted image here and stores the copy's
path, relative to the home, in the example's image column: an image whose bytes change becomes a
new example version, identical images share one file, the home stays movable, and Label Studio's
local-files storage can serve the copies with the home as its document root.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

IMAGES_DIR = "images"


def stored_relative_path(sha256: str, extension: str) -> str:
    """The home-relative path of the copy of the image with this sha256 (hex) and extension (``.png``)."""
    return f"{IMAGES_DIR}/{sha256[:2]}/{sha256}{extension.lower()}"


def warehouse_home(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The engine home of an open warehouse (the folder of its DuckDB file); None in memory."""
    # fetchall, not fetchone: a table function's result left half-read keeps the connection busy,
    # and DuckDB then refuses register() (the embedding cache's) with "unfinished result".
    rows = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchall()
    return Path(rows[0][0]).resolve().parent if rows and rows[0][0] else None


def absolute_image_paths(values: pd.Series, home: Path | None) -> pd.Series:
    """Stored image paths (home-relative, shape (N,)) as absolute paths; missing values stay None."""
    if home is None:
        return values
    text = values.astype(object)
    relative = text.notna() & ~text.astype(str).str.startswith("/")
    return text.where(~relative, str(home) + "/" + text.astype(str))


def perceptual_hashes(con: duckdb.DuckDBPyConnection, paths: np.ndarray) -> np.ndarray | None:
    """The stored perceptual hash (uint64, shape (N,)) of each stored image path (relative or
    absolute); None when any image is not in the ``images`` table."""
    # The stored copy's file name is its sha256 (see stored_relative_path).
    sha = pd.Series(paths, dtype=object).astype(str).str.rsplit("/", n=1).str[-1].str.split(".").str[0]
    known = con.execute("SELECT sha256, phash FROM images").fetchdf()
    found = sha.map(pd.Series(known["phash"].to_numpy(dtype=np.uint64), index=known["sha256"]))
    if found.isna().any():
        return None
    return found.to_numpy(dtype=np.uint64)


def image_sizes(con: duckdb.DuckDBPyConnection, paths: list[object]) -> list[tuple[int | None, int | None]]:
    """Each stored image path's (width, height) in pixels as Pillow read it at ingest (``images``);
    (None, None) for a path not stored."""
    known = {p: (int(w), int(h)) for p, w, h in con.execute("SELECT path, width, height FROM images").fetchall()}
    return [known.get(str(p), (None, None)) for p in paths]
