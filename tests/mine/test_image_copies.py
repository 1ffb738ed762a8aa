"""Near copies among drawn shapes: simple drawings whose perceptual hashes collide are not copies
unless the pictures agree, and resized, re-encoded and shifted copies are still found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_engine.demo.drawn_shapes import write_shape_files
from data_engine.ingest.images import perceptual_hash
from data_engine.mine.detectors.image_duplicates import find_image_copies, hash_pairs
from data_engine.mine.detectors.neighbours import find_neighbours
from data_engine.mine.embedders import get_embedder


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    """100 distinct drawn shapes and 15 near copies (5 resized, 5 JPEG re-encoded, 5 shifted by
    1-2 px) as files, with what the detector gets: pHashes as ingest computes them and the
    neighbours in the ``image`` embedding."""
    root = tmp_path_factory.mktemp("shapes")
    files = write_shape_files(root, n=100, near_copies=15, seed=7)
    paths = np.array([str(root / p) for p in files.manifest["image"]], dtype=object)
    hashes = np.array([perceptual_hash(Image.open(p)) for p in paths], dtype=np.uint64)
    vectors = get_embedder("image").embed(pd.DataFrame({"image": paths}), ["image"])
    return files, paths, hashes, find_neighbours(vectors)


def test_distinct_drawn_shapes_with_close_hashes_are_not_copies_and_every_copy_is_found(shapes) -> None:
    files, paths, hashes, neighbours = shapes
    ids = files.manifest["id"].to_numpy()
    source = dict(zip(files.near_copies["id"], files.near_copies["copy_of"]))
    # The set holds what fooled the hash alone: distinct drawings within 2 bits of each other.
    i, j, _ = hash_pairs(hashes)
    colliding = [(a, b) for a, b in zip(ids[i], ids[j]) if source.get(a) != b and source.get(b) != a]
    assert len(colliding) >= 3
    copies = find_image_copies(hashes, paths, neighbours)
    pairs = {(ids[r], ids[p]) for r, p in enumerate(copies.partner) if p >= 0}
    wrong = {pair for pair in pairs if source.get(pair[0]) != pair[1] and source.get(pair[1]) != pair[0]}
    assert wrong == set()
    missed = [(c, s) for c, s in source.items() if (c, s) not in pairs and (s, c) not in pairs]
    assert missed == []
    assert set(files.near_copies["kind"]) == {"resized", "re-encoded", "shifted"}


def test_the_drawn_shapes_are_written_deterministically(tmp_path: Path) -> None:
    first = write_shape_files(tmp_path / "a", n=10, near_copies=3, seed=1)
    again = write_shape_files(tmp_path / "b", n=10, near_copies=3, seed=1)
    assert first.manifest.equals(again.manifest) and first.near_copies.equals(again.near_copies)
    for name in first.manifest["image"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
