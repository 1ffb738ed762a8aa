"""Image files at ingest: each row's image is found, decoded and copied under the home, or the row is
quarantined with the reason (missing file, not an image, corrupt, unsupported format, outside the
allowed folders).

Called by :mod:`data_engine.ingest.batch` after its set-based validation, only for datasets with an
``image_column``: the tabular path pays nothing. Everything is set-based except opening each
distinct image once, which no SQL can do (Pillow decodes it fully, so a truncated file is caught
here and not in a model). Accepted images are copied to ``HOME/images`` by the sha256 of their
bytes (:mod:`data_engine.store.images`) and the row stores the copy's home-relative path; what the
file said is kept in ``image_sources`` (and a quarantined row keeps it in its raw JSON).

A reference is a path or a ``file://`` URI. Relative paths are read under ``[dataset] image_root``
when it is set, else beside the landed file. Whatever the reference, the file must resolve (after
``..`` and symbolic links) inside an allowed folder: the landed file's folder, ``image_root``, or
``HOME/images``; a landed file cannot make the engine copy (and Label Studio serve) any other file.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import duckdb
import pandas as pd

from data_engine.errors import EngineError
from data_engine.store.config import DatasetConfig
from data_engine.store.images import IMAGES_DIR, stored_relative_path
from data_engine.store.warehouse import quote_ident

# Formats accepted, by Pillow's format name, with the extension of the stored copy. Others (PSD,
# ICO, multi-page TIFF stacks, ...) are quarantined as unsupported rather than half-read.
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif", "WEBP": ".webp"}
# Pillow refuses larger images as decompression bombs by default (about 89 million pixels).
MAX_PIXELS = 89_478_485
# Opening images is I/O and C code that releases the GIL: two threads fill the machine's 2 cores.
CHECK_THREADS = 2


class ImageRejected(EngineError):
    """An image reference that cannot be used; the message is the quarantine reason."""


@dataclass(frozen=True)
class CheckedImage:
    """One decoded image: where it was, its content hash and perceptual hash, and its properties."""

    source: Path
    sha256: str
    format: str
    width: int
    height: int
    mode: str
    bytes: int
    phash: int

    @property
    def stored_path(self) -> str:
        """The home-relative path of its copy."""
        return stored_relative_path(self.sha256, FORMATS[self.format])


def allowed_roots(home: Path, image_root: str | None, landed_dir: Path | None) -> list[Path]:
    """The folders image files may be read from (resolved): ``image_root``, the landed file's
    folder, and the home's own image store."""
    roots = [Path(image_root).expanduser()] if image_root else []
    if landed_dir is not None:
        roots.append(landed_dir)
    roots.append(home / IMAGES_DIR)
    return [r.resolve() for r in roots]


def resolve_reference(value: str, *, base: Path, roots: list[Path]) -> Path:
    """The file a reference names: a path (relative to ``base``) or a ``file://`` URI.

    Raises :class:`ImageRejected` when it is empty, another URI scheme, or resolves (after ``..`` and
    symbolic links) outside every folder of ``roots``.
    """
    text = value.strip()
    if not text:
        raise ImageRejected("empty image path")
    if text.lower().startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ImageRejected(f"{_short(text)}: file:// URI of another host {parts.netloc!r}")
        text = unquote(parts.path)
    elif "://" in text:
        raise ImageRejected(f"{_short(text)}: only file paths and file:// URIs are read (no downloads)")
    path = (base / text).resolve()
    if not any(path.is_relative_to(root) for root in roots):
        raise ImageRejected(f"{_short(value)}: outside the allowed image folders ({', '.join(map(str, roots))})")
    return path


def check_image(path: Path) -> CheckedImage:
    """Open and fully decode ``path`` with Pillow; its facts, or :class:`ImageRejected` with the reason."""
    return read_image(path)[0]


def read_image(path: Path) -> tuple[CheckedImage, bytes]:
    """:func:`check_image`, also returning the bytes that were checked (what a copy must hold)."""
    from PIL import Image, UnidentifiedImageError

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ImageRejected(f"{path}: no such image file") from None
    except IsADirectoryError:
        raise ImageRejected(f"{path}: is a folder, not an image file") from None
    except OSError as exc:
        raise ImageRejected(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format or "?"
            if fmt not in FORMATS:
                raise ImageRejected(f"{path}: unsupported image format {fmt} (accepted: {', '.join(FORMATS)})")
            if im.width * im.height > MAX_PIXELS:
                raise ImageRejected(f"{path}: {im.width}x{im.height} pixels is more than {MAX_PIXELS}")
            im.load()  # the whole image: a truncated or corrupt file fails here
            return CheckedImage(path, hashlib.sha256(data).hexdigest(), fmt, im.width, im.height, im.mode,
                                len(data), perceptual_hash(im)), data
    except UnidentifiedImageError:
        raise ImageRejected(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageRejected(f"{path}: corrupt image ({_short(str(exc))})") from None


def perceptual_hash(image: object) -> int:
    """imagehash's 64-bit DCT perceptual hash (pHash) of a Pillow image, as an unsigned integer.

    Copies that were resized or re-encoded stay within a few bits of each other (see
    :mod:`data_engine.mine.detectors.image_duplicates`).
    """
    import imagehash

    return int(str(imagehash.phash(image)), 16)


def store_copy(home: Path, checked: CheckedImage, data: bytes) -> None:
    """Write the checked bytes to their content-addressed place under ``home`` unless already there
    (the bytes that were hashed, not the file again: it may have changed since)."""
    target = home / checked.stored_path
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)  # atomic: a reader never sees half a file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_batch_images(con: duckdb.DuckDBPyConnection, ds: DatasetConfig, home: Path, landed: Path,
                       batch_id: str, columns: tuple[str, ...]) -> int:
    """Check the images of the batch being ingested; quarantine the rows whose image fails.

    Runs inside the batch's transaction, after validation built the temp table ``rejected`` and the
    view ``good`` over ``raw_rows``. Adds the failing rows to ``rejected`` (a row already rejected
    gets the image's reason appended), then puts a view in front of ``raw_rows`` that reads the
    stored copy's path in place of each accepted reference, so ``good`` stores it. Returns the
    number of rows newly rejected.
    """
    col = quote_ident(ds.image_column or "")
    values = [r[0] for r in con.execute(
        f"SELECT DISTINCT {col} FROM raw_rows WHERE {col} IS NOT NULL AND __row NOT IN (SELECT __row FROM rejected)"
    ).fetchall()]
    base = Path(ds.image_root).expanduser() if ds.image_root else landed.parent
    roots = allowed_roots(home, ds.image_root, landed.parent)

    def check(value: str) -> CheckedImage | str:
        try:
            checked, data = read_image(resolve_reference(value, base=base, roots=roots))
        except ImageRejected as exc:
            return str(exc)
        store_copy(home, checked, data)  # here, so one image's bytes at a time are held per thread
        return checked

    with ThreadPoolExecutor(CHECK_THREADS) as pool:
        outcomes = list(pool.map(check, values))
    good = [o for o in outcomes if isinstance(o, CheckedImage)]
    checks = pd.DataFrame({
        "value": pd.Series(values, dtype=object),
        "stored": pd.Series([o.stored_path if isinstance(o, CheckedImage) else None for o in outcomes], dtype=object),
        "sha256": pd.Series([o.sha256 if isinstance(o, CheckedImage) else None for o in outcomes], dtype=object),
        "reason": pd.Series([None if isinstance(o, CheckedImage) else f"image: {o}" for o in outcomes], dtype=object),
    })
    con.register("_image_checks", checks)
    try:
        con.execute("CREATE TEMP TABLE image_checks AS SELECT * FROM _image_checks")
    finally:
        con.unregister("_image_checks")
    empty = f"'image: empty image path (column {ds.image_column.replace(chr(39), chr(39) * 2)})'"
    con.execute(
        "CREATE TEMP TABLE image_rejects AS SELECT r.__row, "
        f"CASE WHEN nullif(trim(r.{col}), '') IS NULL THEN {empty} ELSE m.reason END AS reason "
        f"FROM raw_rows r LEFT JOIN image_checks m ON m.value = r.{col} "
        f"WHERE nullif(trim(r.{col}), '') IS NULL OR m.reason IS NOT NULL"
    )
    con.execute("UPDATE rejected SET reason = rejected.reason || '; ' || i.reason FROM image_rejects i "
                "WHERE rejected.__row = i.__row")
    raw_json = ", ".join(f"{_literal(c)}: r.{quote_ident(c)}" for c in columns)
    added = con.execute(
        f"INSERT INTO rejected SELECT i.__row, i.reason, to_json({{{raw_json}}})::VARCHAR FROM image_rejects i "
        "JOIN raw_rows r USING (__row) ANTI JOIN rejected USING (__row)"
    ).fetchone()[0]
    _record(con, good, batch_id, col)
    # ``good`` reads raw_rows by name when it is queried: from now on that is the resolved view.
    kind = "VIEW" if con.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND view_name = "
                                 "'raw_rows'").fetchone()[0] else "TABLE"
    con.execute(f"ALTER {kind} raw_rows RENAME TO raw_rows_images")
    con.execute(f"CREATE TEMP VIEW raw_rows AS SELECT r.* REPLACE (coalesce(m.stored, r.{col}) AS {col}) "
                f"FROM raw_rows_images r LEFT JOIN image_checks m ON m.value = r.{col}")
    return int(added)


def _record(con: duckdb.DuckDBPyConnection, good: list[CheckedImage], batch_id: str, col: str) -> None:
    """Add new images to ``images`` and every accepted row's reference to ``image_sources``."""
    if good:
        facts = pd.DataFrame([{
            "sha256": g.sha256, "path": g.stored_path, "format": g.format, "width": g.width, "height": g.height,
            "mode": g.mode, "bytes": g.bytes, "phash": g.phash} for g in {g.sha256: g for g in good}.values()])
        con.register("_image_facts", facts)
        try:
            con.execute("INSERT INTO images (sha256, path, format, width, height, mode, bytes, phash) "
                        "SELECT sha256, path, format, width, height, mode, bytes, phash::UBIGINT FROM _image_facts "
                        "ANTI JOIN images USING (sha256)")
        finally:
            con.unregister("_image_facts")
    con.execute(
        f"INSERT OR REPLACE INTO image_sources SELECT ?, r.__row, r.{col}, m.sha256 FROM raw_rows r "
        f"JOIN image_checks m ON m.value = r.{col} WHERE m.sha256 IS NOT NULL "
        "AND r.__row NOT IN (SELECT __row FROM rejected)", [batch_id])


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "..."
