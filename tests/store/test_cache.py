"""Signed pickle caches (``data_engine.store.cache``): checked reading the file in chunks, then
unpickled from the same open file, so a cache is not held in memory twice; a changed byte anywhere,
or a file others may write, is never unpickled (tests/reliability/test_security.py: a replaced file)."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import numpy as np

from data_engine.store import cache
from data_engine.store.cache import load_cache, save_cache
from data_engine.store.home import Home


def _home(tmp_path: Path) -> Home:
    home = Home(tmp_path / "home")
    home.make_dirs()
    return home


def test_a_cache_of_many_chunks_loads_and_a_byte_changed_past_the_first_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_SIGN_CHUNK", 4096)
    home, path = _home(tmp_path), tmp_path / "home" / "models" / "x.joblib"
    obj = {"index": np.arange(25_000, dtype=np.int64)}  # 200,000 bytes of data: 49 chunks and more
    save_cache(home, obj, path)
    assert path.stat().st_size > 40 * 4096
    assert np.array_equal(load_cache(home, path)["index"], obj["index"])
    data = bytearray(path.read_bytes())
    data[150_000] ^= 1  # inside the array, chunk 37
    path.write_bytes(bytes(data))
    assert load_cache(home, path) is None
    data[150_000] ^= 1
    path.write_bytes(bytes(data))
    assert np.array_equal(load_cache(home, path)["index"], obj["index"])


def test_loading_does_not_hold_the_file_beside_the_object(tmp_path, monkeypatch):
    monkeypatch.setattr(cache, "_SIGN_CHUNK", 1 << 16)
    home, path = _home(tmp_path), tmp_path / "home" / "models" / "big.joblib"
    size = 8 << 20
    save_cache(home, os.urandom(size), path)
    tracemalloc.start()
    try:
        loaded = load_cache(home, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(loaded) == size
    # The object itself (8 MiB) and read buffers; the file's bytes beside it were 16 MiB and more.
    assert peak < 1.5 * size, peak


def test_a_cache_others_may_write_is_not_unpickled(tmp_path):
    home, path = _home(tmp_path), tmp_path / "home" / "models" / "x.joblib"
    save_cache(home, [1, 2, 3], path)
    assert (path.stat().st_mode & 0o777) == 0o600 and load_cache(home, path) == [1, 2, 3]
    path.chmod(0o620)  # group-writable: it could be rewritten between the check and the load
    assert load_cache(home, path) is None
    path.chmod(0o604)  # readable by others, writable only by its owner
    assert load_cache(home, path) == [1, 2, 3]
    path.unlink()
    assert load_cache(home, path) is None


def test_a_distrusted_cache_is_named_once_with_the_reason(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(cache, "_warned", set())
    home, path = _home(tmp_path), tmp_path / "home" / "models" / "x.joblib"
    save_cache(home, [1, 2, 3], path)
    caplog.set_level("WARNING", logger="data_engine.store.cache")
    assert load_cache(home, path) == [1, 2, 3] and caplog.messages == []
    path.chmod(0o664)
    assert load_cache(home, path) is None and load_cache(home, path) is None  # asked twice in one run: one line
    path.chmod(0o644)  # others may read it, not write it: trusted, nothing said
    assert load_cache(home, path) == [1, 2, 3]
    # Owned by another user (this process made to run as another uid).
    owner = path.stat().st_uid
    with monkeypatch.context() as m:
        m.setattr(cache.os, "getuid", lambda: owner + 1000)
        assert load_cache(home, path) is None
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    assert load_cache(home, path) is None
    key = (home.secrets / "cache_key").read_text(encoding="utf-8").strip()
    digest = cache._digest_path(path).read_text(encoding="utf-8").strip()
    assert caplog.messages == [
        f"cache {path} not trusted, so rebuilt: mode 0664 lets other users write it",
        f"cache {path} not trusted, so rebuilt: owned by uid {owner}, not by this user (uid {owner + 1000})",
        f"cache {path} not trusted, so rebuilt: its keyed sha256 does not match (changed since it was written, or "
        "signed with another home's key)"]
    assert not any(key in m or digest in m for m in caplog.messages)  # neither the home's key nor the digest
