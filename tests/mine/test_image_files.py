"""Image files through the loop: the ``image`` embedder, near copies by perceptual hash and
alignment, mining, review tasks that link the stored file, and /predict on an image path."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from data_engine.demo.image_files import digit_image, near_copy
from data_engine.errors import EngineError
from data_engine.mine.detectors.image_compare import ImageComparer
from data_engine.mine.detectors.image_duplicates import COPY_MAX_DIFFERENCE, find_image_copies, hash_pairs
from data_engine.mine.embedders import get_embedder
from data_engine.mine.embedders.image import DIMENSIONS
from data_engine.mine.run import run_mining
from data_engine.review.labelstudio.fake import FakeReviewClient
from data_engine.review.push import push_queue
from data_engine.ship import deploy, registry
from data_engine.ship.training import train_candidate
from data_engine.store.dataset import load_examples
from data_engine.store.warehouse import open_warehouse
from tests.image_support import image_files_home
from tests.loop_support import train_again


@pytest.fixture(scope="module")
def mined(tmp_path_factory: pytest.TempPathFactory):
    """200 digit files (every 10th label wrong) and 9 near copies, ingested and mined once."""
    root = tmp_path_factory.mktemp("imagefiles")
    home, manifest, copies = image_files_home(root, n=200, near_copies=9, noise_every=10,
                                              extra_config='[mining]\nmodel = "linear+knn"\n')
    with open_warehouse(home) as con:
        summary = run_mining(con, home.config, home=home)
        issues = con.execute("SELECT example_id, issue_type, is_issue, detail FROM issues WHERE run_id = ?",
                             [summary.run_id]).fetchdf()
    return home, manifest, copies, summary, issues


def test_the_image_embedder_gives_one_fixed_length_vector_per_file(tmp_path: Path) -> None:
    paths = []
    for i, seed in enumerate((1, 2)):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (50, 70, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    emb = get_embedder("image")
    X = emb.embed(pd.DataFrame({"img": paths + paths[:1]}), ["img"])
    assert X.shape == (3, DIMENSIONS) and X.dtype == np.float32
    assert np.array_equal(X[0], X[2]) and not np.array_equal(X[0], X[1])
    with pytest.raises(EngineError, match="missing.png"):
        emb.embed(pd.DataFrame({"img": [str(tmp_path / "missing.png")]}), ["img"])


def test_hash_pairs_finds_exactly_the_close_pairs() -> None:
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 300, dtype=np.uint64)
    h[10] = h[3] ^ np.uint64(0b101)            # 2 bits from row 3
    h[20] = h[4] ^ np.uint64(1 << 63)          # 1 bit from row 4
    h[30] = h[5] ^ np.uint64(0b111)            # 3 bits: too far
    i, j, bits = hash_pairs(h, max_bits=2)
    brute = np.bitwise_count(h[:, None] ^ h[None, :])
    expected = {(a, b) for a, b in zip(*np.nonzero(np.triu(brute <= 2, k=1)))}
    assert set(zip(i.tolist(), j.tolist())) == expected == {(3, 10), (4, 20)}
    assert sorted(bits.tolist()) == [1, 2]


def test_a_shifted_copy_aligns_and_another_digit_does_not(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    data = load_digits().data
    rng = np.random.default_rng(0)
    paths = {}
    for name, image in (("a", digit_image(data[0])), ("b", digit_image(data[10])),  # two different zeros
                        ("a_shifted", near_copy(digit_image(data[0]), "shifted", rng)[0])):
        paths[name] = tmp_path / f"{name}.png"
        image.save(paths[name])
    images = ImageComparer([str(paths[k]) for k in ("a", "b", "a_shifted")])
    assert images.difference(0, 2) <= COPY_MAX_DIFFERENCE < images.difference(0, 1)


def test_mining_image_files_flags_wrong_labels_and_near_copies(mined) -> None:
    _home, manifest, copies, summary, issues = mined
    label = issues[(issues["issue_type"] == "label") & issues["is_issue"]]
    wrong = set(manifest.loc[manifest["label"] != manifest["true_label"], "id"])
    assert len(wrong & set(label["example_id"])) >= 0.7 * len(wrong)
    dup = issues[(issues["issue_type"] == "near_duplicate") & issues["is_issue"]]
    found = set(dup["example_id"])
    # Each injected copy is found (resized and re-encoded ones by hash, shifted ones by alignment):
    # flagged when its label agrees with its original's; of a pair whose labels differ, the one whose
    # label the model and the copies less support is flagged.
    labels = manifest.set_index("id")["label"]
    agree = labels.reindex(copies["id"]).to_numpy() == labels.reindex(copies["copy_of"]).to_numpy()
    assert set(copies.loc[agree, "id"]) <= found
    assert all(c in found or o in found for c, o in zip(copies.loc[~agree, "id"], copies.loc[~agree, "copy_of"]))
    assert len(found - set(copies["id"]) - set(copies["copy_of"])) <= 0.05 * len(manifest)
    assert summary.detector_summaries["near_duplicate"]["near_by_image"] >= len(copies)


def test_review_tasks_link_the_stored_image_served_from_the_home(mined) -> None:
    home, *_ = mined
    client = FakeReviewClient()
    with open_warehouse(home) as con:
        result = push_queue(con, client, home.config, limit=5)
    assert result.sent == 5
    project = client.projects[result.project_id]
    assert project["local_storages"] == [str(home.root / "images")]
    for task in client.tasks.values():
        url = task["data"]["image"]
        assert url.startswith("/data/local-files/?d=images/") and "base64" not in url
        assert (home.root / unquote(url.split("?d=", 1)[1])).is_file()


def test_a_document_root_above_the_home_prefixes_the_paths(mined) -> None:
    from data_engine.review.push import image_prefix

    home, *_ = mined
    cfg = home.config
    above = dataclasses.replace(cfg, review=dataclasses.replace(cfg.review, local_files_root=str(home.root.parent)))
    elsewhere = dataclasses.replace(cfg, review=dataclasses.replace(cfg.review, local_files_root="/nonexistent"))
    with open_warehouse(home) as con:
        assert image_prefix(con, cfg) == ""
        assert image_prefix(con, above) == home.root.name + "/"
        with pytest.raises(EngineError, match="must lie under it"):
            image_prefix(con, elsewhere)


def test_predict_reads_an_image_path_under_the_allowed_folders_only(mined) -> None:
    from fastapi.testclient import TestClient

    from data_engine.ship.serve import create_app

    home, manifest, *_ = mined
    with open_warehouse(home) as con:
        record = train_candidate(con, home).record
        deploy.promote(con, home, record.version, reason="test")
        stored = load_examples(con, home.config.dataset, subset="train")
    landed = home.landing / "digits" / manifest["image"].iloc[0]
    model = registry.load_model(home, record)
    expected = str(model.predict(pd.DataFrame({"image": [str(landed)]}))[0])
    (home.root.parent / "outside.png").write_bytes(landed.read_bytes())
    with TestClient(create_app(home, poll_seconds=60)) as client:
        ok = client.post("/predict", json={"rows": [{"image": "digits/" + manifest["image"].iloc[0]},
                                                    {"image": landed.as_uri()},
                                                    {"image": str(stored["image"].iloc[0])}]})
        escape = client.post("/predict", json={"rows": [{"image": "../../outside.png"}]})
        missing = client.post("/predict", json={"rows": [{"image": "digits/images/nope.png"}]})
        absent = client.post("/predict", json={"rows": [{"image": None}]})
    assert ok.status_code == 200, ok.text
    assert [p["label"] for p in ok.json()["predictions"]][:2] == [expected, expected]
    assert escape.status_code == 422 and "outside the allowed image folders" in escape.text
    assert escape.json()["detail"][0]["loc"] == ["body", "rows", 0, "image"]
    assert missing.status_code == 422 and "no such image file" in missing.text
    assert absent.status_code == 422


def test_predict_file_reads_image_paths_beside_the_file_as_ingest_does(mined) -> None:
    # `data-engine predict FILE` resolved relative image paths against the working directory.
    from data_engine.ship.files import predict_file

    home, manifest, *_ = mined
    with open_warehouse(home) as con:
        # The module's home may already hold a model on this label snapshot (never trained twice).
        record = train_again(con, home).record
        deploy.promote(con, home, record.version, reason="test")
    folder = home.landing / "digits"
    request = folder / "request.csv"
    pd.DataFrame({"id": ["q1", "q2", "q3"],
                  "image": [manifest["image"].iloc[0], "../../outside.png", "nope.png"]}).to_csv(request, index=False)
    expected = str(registry.load_model(home, record).predict(
        pd.DataFrame({"image": [str(folder / manifest["image"].iloc[0])]}))[0])
    frame, rejected, _ = predict_file(home, request)
    assert frame["id"].tolist() == ["q1"] and frame["predicted_label"].tolist() == [expected]
    assert [r for r, _ in rejected] == [2, 3]
    assert "outside the allowed image folders" in rejected[0][1] and "no such image file" in rejected[1][1]


def test_the_digits_written_as_files_are_32_pixel_pngs(mined) -> None:
    home, manifest, *_ = mined
    with Image.open(home.landing / "digits" / manifest["image"].iloc[0]) as im:
        assert (im.format, im.size) == ("PNG", (32, 32))


def test_rows_sharing_a_hash_are_compared_with_one_picture_each_not_all_pairs(tmp_path: Path, monkeypatch) -> None:
    from sklearn.datasets import load_digits

    data = load_digits().data
    paths = []
    for i, pixels in enumerate([data[0]] * 3 + [data[0], data[10], data[1], data[2]]):
        paths.append(str(tmp_path / f"{i}.png"))
        digit_image(pixels).save(paths[-1])
    # Rows 0-2 and 5 share a hash, row 3 is 1 bit off; row 5 is another digit (a hash collision).
    h = np.array([7, 7, 7, 7 ^ (1 << 30), 2**62, 7, 0xABCDEF0123456789], dtype=np.uint64)
    copies = find_image_copies(h, paths, None)
    assert copies.partner.tolist() == [1, 0, 0, 0, -1, -1, -1]
    assert copies.bits.tolist() == [0, 0, 0, 1, -1, -1, -1]
    # No file to compare: a close hash alone is no copy.
    assert (find_image_copies(h, None, None).partner == -1).all()
    # A thousand copies of one picture under one hash: one comparison each, not half a million.
    calls = []
    real = ImageComparer.difference
    monkeypatch.setattr(ImageComparer, "difference", lambda self, i, j: calls.append((i, j)) or real(self, i, j))
    found = find_image_copies(np.full(1000, 7, dtype=np.uint64), [paths[0]] * 1000, None)
    assert found.found.all() and len(calls) == 999


def test_mining_with_the_image_embedder_named_stores_and_reuses_its_vectors(tmp_path: Path) -> None:
    # `[mining] embedding = "image"` (not "auto") goes through the embedding cache: it crashed with
    # DuckDB's "unfinished result" when loading the examples had left a result half-read.
    home, _, _ = image_files_home(tmp_path, n=30, extra_config='[mining]\nembedding = "image"\nmodel = "linear"\n'
                                                               "folds = 3\nn_jobs = 1\n")
    with open_warehouse(home) as con:
        first = run_mining(con, home.config, home=home)
        again = run_mining(con, home.config, home=home, force=True)
    assert (first.embedding, first.newly_embedded, again.newly_embedded) == ("image", 30, 0)
