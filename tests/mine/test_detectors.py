"""Each detector on small hand-made arrays, with the exact rows it must flag."""

from __future__ import annotations

import json

import numpy as np
import pytest

from data_engine.errors import EngineError
from data_engine.mine.detectors import (
    DETECTORS,
    ClassImbalanceDetector,
    LabelDetector,
    MiningData,
    NearDuplicateDetector,
    Neighbours,
    OutlierDetector,
    UncertainDetector,
    get_detector,
    run_detectors,
)
from data_engine.mine.detectors import neighbours as nb


def make_data(labels, probs, *, hashes=None, neighbours=None, classes=("a", "b"), oos=None) -> MiningData:
    labels = np.asarray(labels)
    n = len(labels)
    return MiningData(
        example_ids=np.array([f"e{i}" for i in range(n)], dtype=object),
        labels=labels,
        classes=tuple(classes),
        probs=np.asarray(probs, dtype=float),
        out_of_sample=np.ones(n, bool) if oos is None else np.asarray(oos),
        feature_hash=np.array([f"h{i}" for i in range(n)] if hashes is None else hashes, dtype=object),
        neighbours=neighbours,
    )


def confident(labels, k=2, p=0.9):
    probs = np.full((len(labels), k), (1 - p) / (k - 1))
    probs[np.arange(len(labels)), labels] = p
    return probs


def test_registry_holds_every_issue_type():
    assert set(DETECTORS) == {"label", "outlier", "near_duplicate", "uncertain", "class_imbalance", "lookalike", "drift"}
    assert get_detector("label").issue_name == "label"
    with pytest.raises(EngineError, match="unknown detector 'typo'"):
        get_detector("typo")


def test_label_flags_exactly_the_contradicted_labels():
    labels = np.array([0] * 10 + [1] * 10)
    probs = confident(labels)
    # Rows 3 and 15: the model is sure of the other class.
    probs[3] = [0.05, 0.95]
    probs[15] = [0.97, 0.03]
    result = LabelDetector().find_issues(make_data(labels, probs))
    flagged = result.issues.loc[result.issues["is_issue"], "example_id"].tolist()
    assert flagged == ["e3", "e15"]
    scores = result.issues.set_index("example_id")["score"]
    assert scores["e3"] == pytest.approx(0.05) and scores["e15"] == pytest.approx(0.03)
    assert scores.drop(["e3", "e15"]).min() == pytest.approx(0.9)
    detail = json.loads(result.issues.set_index("example_id").loc["e3", "detail"])
    assert detail["given"] == "a" and detail["suggested"] == "b"
    assert "model suggests 'b'" in result.issues.set_index("example_id").loc["e3", "reason"]


def test_label_ignores_unlabeled_rows_and_classes_without_labels():
    labels = np.array([0] * 8 + [1] * 8 + [-1, -1])
    probs = confident(np.r_[labels[:16], [0, 1]], k=3, p=0.8)
    probs[2] = [0.1, 0.8, 0.1]
    result = LabelDetector().find_issues(make_data(labels, probs, classes=("a", "b", "c")))
    assert len(result.issues) == 16  # unlabeled rows are not judged
    assert result.issues.loc[result.issues["is_issue"], "example_id"].tolist() == ["e2"]


def test_label_skips_rows_without_out_of_sample_probabilities():
    labels = np.array([0] * 6 + [1] * 6)
    probs = confident(labels)
    probs[0] = [0.01, 0.99]
    oos = np.ones(12, bool)
    oos[0] = False  # e.g. an in-sample prediction: must not be judged
    result = LabelDetector().find_issues(make_data(labels, probs, oos=oos))
    assert "e0" not in set(result.issues["example_id"])


def points_with_neighbours(points: np.ndarray) -> Neighbours:
    return nb.find_neighbours(np.asarray(points, dtype=np.float32), k=3)


def test_outlier_flags_only_the_far_point():
    rng = np.random.default_rng(0)
    grid = np.array([[i, j] for i in range(5) for j in range(4)], dtype=float) + rng.normal(0, 0.05, (20, 2))
    x = np.vstack([grid, [[100.0, 0.0]]])
    labels = np.r_[np.zeros(21, int)]
    data = make_data(labels, confident(labels), neighbours=points_with_neighbours(x))
    result = OutlierDetector().find_issues(data)
    assert result.issues.loc[result.issues["is_issue"], "example_id"].tolist() == ["e20"]
    scores = result.issues["score"].to_numpy()
    assert scores[20] == scores.min() and scores[20] < 0.01
    assert (scores >= 0).all() and (scores <= 1).all()


def test_outlier_flags_nothing_on_an_even_grid():
    x = np.c_[np.arange(20, dtype=float) * 0.1, np.zeros(20)]
    labels = np.zeros(20, int)
    data = make_data(labels, confident(labels), neighbours=points_with_neighbours(x))
    assert not OutlierDetector().find_issues(data).issues["is_issue"].any()


def test_outlier_without_neighbours_is_skipped():
    labels = np.zeros(5, int)
    result = OutlierDetector().find_issues(make_data(labels, confident(labels)))
    assert result.issues.empty and "skipped" in result.summary


def test_near_duplicate_exact_and_near_copies_and_label_disagreement():
    # e0/e1: same input hash, different labels. e2/e3: 0.001 apart, same label. Others spread out.
    points = np.array([[0, 0], [0, 0], [5, 5], [5, 5.001], [10, 0], [0, 10], [10, 10], [20, 20]], dtype=float)
    hashes = ["same", "same", "h2", "h3", "h4", "h5", "h6", "h7"]
    labels = np.array([0, 1, 1, 1, 0, 0, 1, -1])
    # The same input gets the same out-of-fold probabilities: class a at 0.8 for e0 and e1.
    probs = confident(np.maximum(labels, 0))
    probs[1] = probs[0] = [0.8, 0.2]
    data = make_data(labels, probs, hashes=hashes, neighbours=points_with_neighbours(points))
    result = NearDuplicateDetector().find_issues(data)
    issues = result.issues.set_index("example_id")
    # Of the contradictory copies only e1 is flagged: its label is the likelier wrong one (model
    # 0.2, half its copies); being a copy with a different label is no evidence against e0's.
    assert issues["is_issue"].tolist() == [False, True, True, True, False, False, False, False]
    assert issues.loc["e1", "score"] == pytest.approx(0.5 * (0.2 + 0.5))
    detail = issues["detail"].map(json.loads)
    assert detail["e0"] == {"duplicate_of": "e1", "exact": True, "found_by": "same content", "copies": 2,
                            "labels_disagree": True}
    assert detail["e2"]["found_by"] == "embedding" and detail["e4"]["found_by"] is None
    assert detail["e1"]["duplicate_of"] == "e0"
    assert detail["e2"]["duplicate_of"] == "e3" and not detail["e2"]["exact"]
    assert not detail["e2"]["labels_disagree"]
    # Contradictory copies score below agreeing copies, which score below non-copies... or equal.
    assert issues.loc["e1", "score"] < 0.5 <= issues.loc["e2", "score"] < issues.loc["e4", "score"]
    assert "different label" in issues.loc["e0", "reason"]
    assert result.summary["exact"] == 2 and result.summary["near"] == 2 and result.summary["labels_disagree"] == 2


def test_near_duplicate_finds_image_copies_by_perceptual_hash_confirmed_by_the_images(tmp_path):
    import dataclasses
    import io

    from PIL import Image

    from data_engine.demo.drawn_shapes import draw_shape

    points = np.array([[0, 0], [3, 3], [6, 0], [0, 6], [9, 9], [12, 0]], dtype=float)
    labels = np.array([0, 1, 1, 0, 0, 1])
    white, red, blue = (255, 255, 255), (200, 30, 30), (30, 60, 200)
    disc = draw_shape("disc", (30, 30), 24, red, white, 2)
    buf = io.BytesIO()
    disc.save(buf, "JPEG", quality=80)
    images = [disc, Image.open(io.BytesIO(buf.getvalue())), draw_shape("square", (30, 34), 24, blue, white, 2),
              draw_shape("triangle", (34, 30), 32, red, white, 2), draw_shape("circle", (32, 32), 24, red, white, 2),
              draw_shape("circle", (32, 32), 24, blue, white, 2)]
    paths = np.array([str(tmp_path / f"e{i}.png") for i in range(6)], dtype=object)
    for image, path in zip(images, paths):
        image.save(path)
    probs = confident(labels)
    probs[0] = probs[1] = [0.7, 0.3]  # the same picture: the same out-of-fold probabilities
    data = make_data(labels, probs, hashes=[f"h{i}" for i in range(6)], neighbours=points_with_neighbours(points))
    far = np.random.default_rng(0).integers(0, 2**63, 4, dtype=np.uint64)  # ~32 bits from anything
    phash = np.array([far[0], far[0] ^ np.uint64(0b11), far[1], far[1] ^ np.uint64(0b111), far[2],
                      far[2] ^ np.uint64(0b1)], dtype=np.uint64)
    result = NearDuplicateDetector().find_issues(dataclasses.replace(data, image_hashes=phash, image_paths=paths))
    issues = result.issues.set_index("example_id")
    # e0/e1 are 2 bits apart and the same picture (a JPEG copy; labels disagree): a copy. e2/e3 are
    # 3 bits apart: not a candidate. e4/e5 are 1 bit apart but a red and a blue ring: not a copy.
    # Of the copy, e1's label (b, model 0.3) is the likelier wrong one: it alone is flagged.
    assert issues["is_issue"].tolist() == [False, True, False, False, False, False]
    detail = issues["detail"].map(json.loads)
    assert detail["e0"]["duplicate_of"] == "e1" and detail["e0"]["found_by"] == "image comparison"
    assert detail["e0"]["labels_disagree"] and issues.loc["e1", "score"] < 0.5 < issues.loc["e0", "score"]
    assert result.summary["near_by_image"] == 2


def test_near_duplicate_exact_groups_work_without_neighbours():
    labels = np.array([0, 0, 0, 1])
    probs = confident(labels)
    probs[[0, 2, 3]] = [0.7, 0.3]  # one input, one out-of-fold prediction
    data = make_data(labels, probs, hashes=["x", "y", "x", "x"])
    issues = NearDuplicateDetector().find_issues(data).issues.set_index("example_id")
    # Only e3 is flagged: one of three copies carries b and the model gives b 0.3.
    assert issues["is_issue"].tolist() == [False, False, False, True]
    assert issues.loc["e3", "score"] == pytest.approx(0.5 * (0.3 + 1 / 3))
    # The group {e0, e2, e3} holds labels a and b: every member disagrees.
    assert issues.loc[["e0", "e2", "e3"], "detail"].map(lambda d: json.loads(d)["labels_disagree"]).all()
    assert json.loads(issues.loc["e0", "detail"])["copies"] == 3


def test_uncertain_judges_only_unlabeled_rows_by_margin():
    labels = np.array([0, 1, -1, -1, -1])
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.55, 0.45], [0.95, 0.05], [np.nan, np.nan]])
    result = UncertainDetector().find_issues(make_data(labels, probs))
    issues = result.issues.set_index("example_id")
    assert list(issues.index) == ["e2", "e3"]  # labeled rows and rows without probabilities are skipped
    assert issues["is_issue"].tolist() == [True, False]
    assert issues.loc["e2", "score"] == pytest.approx(0.10)
    assert issues.loc["e3", "score"] == pytest.approx(0.90)


def test_class_imbalance_is_dataset_level():
    labels = np.array([0] * 100 + [1] * 100 + [2] * 5 + [-1] * 50)
    result = ClassImbalanceDetector().find_issues(make_data(labels, confident(np.maximum(labels, 0), k=3),
                                                            classes=("a", "b", "c")))
    assert result.issues.empty
    assert result.summary["minority_classes"] == ["c"]
    assert result.summary["counts"] == {"a": 100, "b": 100, "c": 5}
    assert result.summary["ratio_largest_to_smallest"] == 20.0
    balanced = ClassImbalanceDetector().find_issues(make_data(np.array([0, 1] * 10), confident(np.array([0, 1] * 10))))
    assert balanced.summary["is_issue"] is False


def test_mining_data_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="probs has shape"):
        make_data(np.array([0, 1]), np.ones((3, 2)) / 2)


def test_run_detectors_returns_results_in_order():
    labels = np.array([0] * 5 + [1] * 5)
    out = run_detectors(make_data(labels, confident(labels)), ["uncertain", "label"])
    assert list(out) == ["uncertain", "label"]


def test_approximate_neighbour_search_matches_exact_on_separated_clusters(monkeypatch):
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 100, (6, 3))
    X = (centres[rng.integers(0, 6, 600)] + rng.normal(0, 1, (600, 3))).astype(np.float32)
    exact = nb.find_neighbours(X, k=5)
    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 100)
    found = nb.search_neighbours(X, k=5)
    assert found.graph is not None and found.recall >= nb.TARGET_RECALL
    approx = found.neighbours
    assert approx.indices.shape == (600, 5)
    assert (approx.indices != np.arange(600)[:, None]).all()  # never the row itself
    # Recall at least the target, and a neighbour missed is replaced by a farther one, never a nearer.
    assert nb.recall_at_k(approx.indices, exact.indices) >= 0.95
    assert (approx.distances >= exact.distances - 1e-4).all()


def test_neighbours_never_return_self_even_with_exact_copies():
    X = np.zeros((6, 2), dtype=np.float32)
    found = nb.find_neighbours(X, k=3)
    assert (found.indices != np.arange(6)[:, None]).all()
    assert (found.distances == 0).all()


def frame_of(X: np.ndarray):
    import pandas as pd

    return pd.DataFrame(X, columns=["u", "v"])


def test_extending_the_index_searches_only_the_new_rows():
    rng = np.random.default_rng(1)
    X = rng.normal(0, 1, (300, 2))
    keys = np.array([f"k{i}" for i in range(300)], dtype=object)
    schema = {"u": "numeric", "v": "numeric"}
    # Image modality keeps raw scale, so both embeddings are the identity and comparable.
    full = nb.build_index(keys, frame_of(X), schema, "image", k=4)
    part = nb.build_index(keys[:250], frame_of(X[:250]), schema, "image", k=4)
    grown = nb.extend_index(part, keys[250:], frame_of(X[250:]))
    np.testing.assert_array_equal(grown.neighbours.indices[:250], part.neighbours.indices)
    np.testing.assert_array_equal(grown.neighbours.indices[250:], full.neighbours.indices[250:])
    # Re-ordered keys get re-ordered, re-numbered neighbours.
    order = rng.permutation(300)
    aligned = nb.align_index(grown, keys[order])
    first = grown.neighbours.indices[order[0], 0]
    assert keys[order][aligned.indices[0, 0]] == keys[first]
    assert nb.align_index(grown, keys[:10]) is None


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_extending_an_approximate_index_matches_exact_search_on_separated_clusters(monkeypatch, index):
    monkeypatch.setattr(nb, "EXACT_SEARCH_ROWS", 100)
    if index == "hnsw":  # no list probed is allowed: the search falls back to the graph
        monkeypatch.setattr(nb, "NPROBE_STEPS", ())
    rng = np.random.default_rng(2)
    centres = rng.normal(0, 100, (4, 2))
    X = centres[rng.integers(0, 4, 500)] + rng.normal(0, 1, (500, 2))
    keys = np.array([f"k{i}" for i in range(500)], dtype=object)
    schema = {"u": "numeric", "v": "numeric"}
    part = nb.build_index(keys[:450], frame_of(X[:450]), schema, "image", k=3)
    assert part.graph is not None
    assert (part.nprobe is not None) if index == "ivf" else (part.ef_search is not None)
    grown = nb.extend_index(part, keys[450:], frame_of(X[450:]))
    from sklearn.neighbors import NearestNeighbors

    d, i = NearestNeighbors(n_neighbors=4).fit(X).kneighbors(X[450:])
    # The new rows' neighbours: the recall promised, and a neighbour missed is replaced by a farther one.
    assert nb.recall_at_k(grown.neighbours.indices[450:], i[:, 1:]) >= 0.95
    assert (grown.neighbours.distances[450:] >= d[:, 1:] - 1e-4).all()


def test_label_flags_a_plain_contradiction_confident_learning_misses_on_clean_data():
    # Nearly clean labels and a sure model: every class threshold is ~0.99, so confident learning
    # counts neither row 4 (p(given) = 0.02, the model prefers 'b' at 0.90) nor row 12.
    labels = np.array([0] * 10 + [1] * 10 + [2] * 10)
    probs = confident(labels, k=3, p=0.99)
    probs[4] = [0.02, 0.90, 0.08]
    probs[12] = [0.60, 0.30, 0.10]  # the model prefers 'a' but still gives 'b' 0.30: not a contradiction
    result = LabelDetector().find_issues(make_data(labels, probs, classes=("a", "b", "c")))
    assert result.issues.loc[result.issues["is_issue"], "example_id"].tolist() == ["e4"]
    assert result.summary["flagged_by_confident_learning"] == 0
    assert result.summary["flagged_as_contradicted_only"] == 1


def test_result_without_rows_keeps_count_and_summary():
    from data_engine.mine.detectors.base import DetectorResult, issues_frame

    rows = issues_frame(np.array(["a", "b", "c"], dtype=object), np.array([True, False, True]),
                        np.array([0.1, 0.9, 0.2]), np.array(["x", "", "y"], dtype=object))
    result = DetectorResult("label", rows, {"threshold": 0.5})
    lean = result.without_rows()
    assert lean.n_issues == 2
    assert len(lean.issues) == 0
    assert list(lean.issues.columns) == ["example_id", "is_issue", "score", "reason", "detail"]
    assert lean.summary == {"threshold": 0.5}
    assert lean.issue_name == "label"
    # a dataset-level result (no rows) keeps the count its summary gives
    assert DetectorResult("class_imbalance", rows.iloc[:0], {"is_issue": True}).without_rows().n_issues == 1
