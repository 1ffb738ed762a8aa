"""Signed pickle caches in the engine home: private intermediate results (mining's fitted models,
its neighbour index) that hold types skops cannot check, so they are pickled with joblib and
loaded only when their keyed sha256 (an HMAC with the home's secret key) matches.

A store concern: any stage may keep such a cache beside the warehouse; the model registry
(:mod:`data_engine.ship.registry`) keeps the served models as checked skops files instead.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

from data_engine.store.home import Home

log = logging.getLogger(__name__)

CACHE_KEY_FILE = "cache_key"
# Bytes read at a time when signing a cache, written or read back.
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


def _file_digest(home: Home, fh: BinaryIO) -> str:
    """The keyed sha256 (HMAC with the home's key) of what is left to read in ``fh``, read in
    :data:`_SIGN_CHUNK` byte chunks: a cache of hundreds of MB is never held whole to sign it."""
    import hmac

    mac = hmac.new(_cache_key(home), digestmod=hashlib.sha256)
    while chunk := fh.read(_SIGN_CHUNK):
        mac.update(chunk)
    return mac.hexdigest()


def save_cache(home: Home, obj: Any, path: Path) -> None:
    """Pickle ``obj`` (joblib) to ``path`` atomically, with its keyed sha256 in ``<path>.sha256``.

    For the engine's private caches (mining's fitted models and neighbour index), which hold types
    skops cannot check. The digest is an HMAC with the home's secret key, so a file replaced by
    anyone without the key is never unpickled (see :func:`load_cache`). The file is created 0600
    (``tempfile.mkstemp``), which :func:`load_cache` requires.
    """
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    # Pickled straight to the file and signed reading it back in chunks: a million rows' neighbour
    # index is hundreds of MB, held twice in memory (as a buffer and its bytes) when pickled there.
    # The digest is the same HMAC of the same bytes.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w+b") as fh:
        joblib.dump(obj, fh)
        fh.seek(0)
        digest = _file_digest(home, fh)
    digest_fd, digest_tmp = tempfile.mkstemp(prefix=f".{path.name}.sha256.", suffix=".tmp", dir=path.parent)
    with os.fdopen(digest_fd, "wb") as fh:
        fh.write(digest.encode())
    os.replace(tmp, path)
    os.replace(digest_tmp, _digest_path(path))


def load_cache(home: Home, path: Path) -> Any | None:
    """The object cached at ``path``, or None when it is missing, its keyed sha256 does not match,
    or it is not a private file of this user (see below); the last two are logged as a warning
    naming the file and the reason, once per process.

    The file is opened once, signed reading it in :data:`_SIGN_CHUNK` byte chunks, and only on a
    match read again from the start of the same open file and unpickled: the file is not held in
    memory beside the object it holds (a million rows' neighbour index is hundreds of MB). The open
    file is the checked one even if ``path`` is replaced meanwhile (a rename gives a new file); that
    nobody rewrites it in place between the check and the load is required of its owner and mode:
    this user's, writable by no one else (as :func:`save_cache` makes it). Anyone who can write it
    then can read the home's key anyway.
    """
    import hmac

    import joblib

    try:
        recorded = _digest_path(path).read_text(encoding="utf-8").strip()
        fh = path.open("rb")
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    with fh:
        info = os.fstat(fh.fileno())
        if info.st_uid != os.getuid():
            return _distrusted(path, f"owned by uid {info.st_uid}, not by this user (uid {os.getuid()})")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return _distrusted(path, f"mode {stat.S_IMODE(info.st_mode):04o} lets other users write it")
        if not hmac.compare_digest(recorded, _file_digest(home, fh)):
            return _distrusted(path, "its keyed sha256 does not match (changed since it was written, or signed "
                                     "with another home's key)")
        fh.seek(0)
        return joblib.load(fh)


# (cache file, reason) pairs already warned of in this process (a CLI run, a Dagster step): a run
# may ask for one cache more than once, and one warning says it.
_warned: set[tuple[str, str]] = set()


def _distrusted(path: Path, why: str) -> None:
    """Warn once per process that the cache at ``path`` is not loaded, and ``why`` (owner, mode or
    signature: never the key or the digests); None, so the caller rebuilds it."""
    if (str(path), why) not in _warned:
        _warned.add((str(path), why))
        log.warning("cache %s not trusted, so rebuilt: %s", path, why)
    return None


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")
