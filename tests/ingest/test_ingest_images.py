"""Image files at ingest: every row's image is decoded and stored under the home, or the row is
quarantined with the reason; the tabular path is untouched."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_engine.demo.image_files import IMAGE_FILES_CONFIG
from data_engine.errors import ConfigError
from data_engine.ingest.batch import ingest_file
from data_engine.ingest.images import ImageRejected, resolve_reference
from data_engine.store.config import parse_config
from data_engine.store.dataset import load_examples
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

ROWS = "id,image,label\n"


def _png(path: Path, seed: int = 0, size: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size), dtype=np.uint8)
    Image.fromarray(pixels, "L").save(path)
    return path


@pytest.fixture()
def image_home(make_home: Callable[..., Home]) -> Home:
    return make_home(IMAGE_FILES_CONFIG, name="imghome")


def _ingest(home: Home, name: str, text: str):
    path = home.landing / name
    path.write_text(text, encoding="utf-8")
    with open_warehouse(home) as con:
        return ingest_file(con, home.config.dataset, path)


def test_good_images_are_copied_under_the_home_and_bad_ones_quarantined_with_their_reason(image_home: Home,
                                                                                        tmp_path: Path) -> None:
    land = image_home.landing
    _png(land / "pics" / "a.png", 1)
    _png(land / "pics" / "b.png", 2)
    (land / "pics" / "broken.png").write_bytes(_png(tmp_path / "x.png", 3).read_bytes()[:60])  # truncated
    (land / "pics" / "notes.png").write_text("not an image", encoding="utf-8")
    Image.new("RGB", (4, 4)).save(land / "pics" / "icon.ico")
    outside = _png(tmp_path / "elsewhere" / "secret.png", 4)
    uri = (land / "pics" / "b.png").as_uri()
    r = _ingest(image_home, "batch.csv", ROWS + "\n".join([
        "1,pics/a.png,0", f"2,{uri},1", "3,pics/missing.png,0", "4,pics/broken.png,1", "5,pics/notes.png,0",
        "6,pics/icon.ico,1", f"7,../../elsewhere/{outside.name},0", "8,,1", "9,https://example.com/a.png,0",
        "10,pics/a.png,1"]) + "\n")
    assert (r.rows_in, r.rows_ok, r.rows_quarantined) == (10, 3, 7)
    with open_warehouse(image_home) as con:
        reasons = dict(con.execute("SELECT row_number, reason FROM quarantine ORDER BY row_number").fetchall())
        raw = json.loads(con.execute("SELECT raw FROM quarantine WHERE row_number = 3").fetchone()[0])
        stored = dict(con.execute("SELECT example_id, image FROM examples").fetchall())
        sources = con.execute("SELECT row_number, source FROM image_sources ORDER BY row_number").fetchall()
        n_images = con.execute("SELECT count(*) FROM images").fetchone()[0]
        frame = load_examples(con, image_home.config.dataset, subset="train")
    assert "no such image file" in reasons[3] and raw["image"] == "pics/missing.png"
    assert "corrupt image" in reasons[4]
    assert "not an image file" in reasons[5]
    assert "unsupported image format ICO" in reasons[6]
    assert "outside the allowed image folders" in reasons[7]
    assert "empty image path" in reasons[8]
    assert "no downloads" in reasons[9]
    # The same picture twice is stored once; the rows keep the copy's home-relative path.
    assert stored["1"] == stored["10"] and stored["1"].startswith("images/") and stored["1"].endswith(".png")
    assert n_images == 2 and (image_home.root / stored["2"]).read_bytes() == (land / "pics" / "b.png").read_bytes()
    assert sources == [(1, "pics/a.png"), (2, uri), (10, "pics/a.png")]
    # Models read the file itself: an absolute path.
    assert all(Path(p).is_file() for p in frame["image"])


def test_changed_image_bytes_make_a_new_version(image_home: Home) -> None:
    _png(image_home.landing / "p" / "a.png", 1)
    assert _ingest(image_home, "one.csv", ROWS + "1,p/a.png,0\n").rows_new == 1
    _png(image_home.landing / "p" / "a.png", 2)  # same name, other picture
    r = _ingest(image_home, "two.csv", ROWS + "1,./p/a.png,0\n")  # other bytes than one.csv
    assert (r.rows_changed, r.rows_unchanged) == (1, 0)


def test_a_row_bad_for_two_reasons_names_both(image_home: Home) -> None:
    r = _ingest(image_home, "b.csv", ROWS + "1,nothing.png,x\n2,nothing.png,0\n")
    with open_warehouse(image_home) as con:
        reason = con.execute("SELECT reason FROM quarantine WHERE row_number = 1").fetchone()[0]
    assert r.rows_quarantined == 2 and "not one of the classes" in reason and "no such image file" in reason


def test_image_root_reads_relative_paths_there_and_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    _png(root / "x" / "a.png")
    assert resolve_reference("x/a.png", base=root, roots=[root]) == (root / "x" / "a.png").resolve()
    assert resolve_reference((root / "x" / "a.png").as_uri(), base=root, roots=[root]).name == "a.png"
    (root / "link.png").symlink_to(_png(tmp_path / "out.png"))
    for bad in ("../out.png", "x/../../out.png", "link.png", "/etc/passwd", "file:///etc/passwd",
                "file://otherhost/x/a.png"):
        with pytest.raises(ImageRejected):
            resolve_reference(bad, base=root, roots=[root])


def test_config_checks_the_image_keys() -> None:
    base = {"name": "d", "modality": "image", "id_column": "id", "label_column": "label"}
    assert parse_config({"dataset": {**base, "image_column": "img"}}).dataset.input_columns == ("img",)
    for extra, message in (({"image_column": "img", "feature_columns": ["a"]}, "not both"),
                           ({"image_root": "/x", "feature_columns": ["a"]}, "only read with"),
                           ({}, "or image_column")):
        with pytest.raises(ConfigError, match=message):
            parse_config({"dataset": {**base, **extra}})
    with pytest.raises(ConfigError, match="only read when"):
        parse_config({"dataset": {**base, "modality": "text", "text_column": "t", "image_column": "img"}})
