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
