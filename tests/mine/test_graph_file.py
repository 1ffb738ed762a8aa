"""A faiss index kept in its own file (data_engine.mine.detectors.faiss_calls.kept / open_graph):
its sha256 is taken of the bytes as faiss writes them and as faiss reads them, so the file is read
once on reuse and never read back after writing; a changed, cut or lengthened file is refused."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from data_engine.mine.detectors.faiss_calls import GraphFile, kept, open_graph

IO = Path("/proc/self/io")


def _flat(rows: int = 50_000, dims: int = 64):
    import faiss

    index = faiss.IndexFlatL2(dims)
    index.add(np.random.default_rng(0).random((rows, dims), dtype=np.float32))
    return index


def _read_bytes() -> int:
    """Bytes this process has read through read() calls so far (Linux: /proc/self/io ``rchar``)."""
    return int(dict(line.split(": ") for line in IO.read_text().splitlines())["rchar"])


@pytest.mark.skipif(not IO.exists(), reason="counts reads through /proc/self/io (Linux)")
def test_the_graph_file_is_hashed_as_written_and_read_once(tmp_path):
    import faiss

    before = _read_bytes()
    graph = kept([_flat()], tmp_path)
    written = _read_bytes() - before
    size = graph.path.stat().st_size
    assert size == 50_000 * 64 * 4 + 45  # the vectors and faiss's header
    assert graph.sha256 == hashlib.sha256(graph.path.read_bytes()).hexdigest()
    assert graph.path.name == f"graph-{graph.sha256}.faiss"
    assert written < size // 10  # not read back (reading it back for the digest read `size` bytes)
    before = _read_bytes()
    index = open_graph(graph)
    opened = _read_bytes() - before
    assert size <= opened < size + size // 10  # once (hashing it first, then faiss reading it: twice)
    assert index.ntotal == 50_000
    assert faiss.serialize_index(index).tobytes() == graph.path.read_bytes()


def test_a_cut_lengthened_or_missing_graph_file_is_refused(tmp_path):
    graph = kept([_flat(2_000, 8)], tmp_path)
    data = graph.path.read_bytes()
    for changed in (data[:-100], data + b"\0", data[:40] + bytes([data[40] ^ 1]) + data[41:]):
        graph.path.write_bytes(changed)
        with pytest.raises(ValueError, match="its bytes changed since it was written"):
            open_graph(graph)
    graph.path.write_bytes(data)
    assert open_graph(graph).ntotal == 2_000
    with pytest.raises(ValueError, match="No such file"):
        open_graph(GraphFile(tmp_path / "gone.faiss", graph.sha256))
