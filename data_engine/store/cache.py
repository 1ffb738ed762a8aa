"""Signed pickle caches in the engine home: private intermediate results (mining's fitted models,
its neighbour index) that hold types skops cannot check, so they are pickled with joblib and
loaded only when their keyed sha256 (an HMAC with the home's secret key) matches.

A store concern: any stage may keep such a cache beside the warehouse; the model registry
(:mod:`data_engine.ship.registry`) keeps the served models as checked skops files instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from data_engine.store.home import Home

CACHE_KEY_FILE = "cache_key"
# Bytes read at a time when signing a written cache.
_SIGN_CHUNK = 1 << 24


def _cache_key(home: Home) -> bytes:
    """The home's key for signing pickled caches (``secrets/cache_key``, 0600, created on first use)."""
    path = home.secrets / CACHE_KEY_FILE
    home.secrets.mkdir(parents=True, exist_ok=True)
    os.chmod(home.secrets, 0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return bytes.fromhex(path.read_text(encoding="utf-8").strip())
    key = os.urandom(32)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(key.hex() + "\n")
    return key


def _cache_digest(home: Home, data: bytes) -> str:
    import hmac

    return hmac.new(_cache_key(home), data, hashlib.sha256).hexdigest()


def save_cache(home: Home, obj: Any, path: Path) -> None:
    """Pickle ``obj`` (joblib) to ``path`` atomically, with its keyed sha256 in ``<path>.sha256``.

    For the engine's private caches (mining's fitted models and neighbour index), which hold types
    skops cannot check. The digest is an HMAC with the home's secret key, so a file replaced by
    anyone without the key is never unpickled (see :func:`load_cache`).
    """
    import hmac

    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    # Pickled straight to the file and signed reading it back in chunks: a million rows' neighbour
    # index is hundreds of MB, held twice in memory (as a buffer and its bytes) when pickled there.
    # The digest is the same HMAC of the same bytes.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w+b") as fh:
        joblib.dump(obj, fh)
        fh.seek(0)
        mac = hmac.new(_cache_key(home), digestmod=hashlib.sha256)
        while chunk := fh.read(_SIGN_CHUNK):
            mac.update(chunk)
    digest_fd, digest_tmp = tempfile.mkstemp(prefix=f".{path.name}.sha256.", suffix=".tmp", dir=path.parent)
    with os.fdopen(digest_fd, "wb") as fh:
        fh.write(mac.hexdigest().encode())
    os.replace(tmp, path)
    os.replace(digest_tmp, _digest_path(path))


def load_cache(home: Home, path: Path) -> Any | None:
    """The object cached at ``path``, or None when it is missing or its keyed sha256 does not match.

    The bytes are checked before anything is unpickled, and the same bytes are then loaded.
    """
    import hmac
    import io

    import joblib

    try:
        data = path.read_bytes()
        recorded = _digest_path(path).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if not hmac.compare_digest(recorded, _cache_digest(home, data)):
        return None
    return joblib.load(io.BytesIO(data))


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
