"""The model registry: specs by name, one estimator contract for every modality and column kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from data_engine.errors import EngineError
from data_engine.mine.models import Schema, build_estimator, build_model, resolve_spec
from data_engine.tasks.oof import out_of_fold_probabilities
from data_engine.mine.spec import AUTO_MEMBERS, KNN_MAX_ROWS, SVM_MAX_ROWS
from data_engine.mine.names import check_names
from data_engine.store.config import parse_config


def test_auto_resolves_per_modality():
    assert resolve_spec("auto", "tabular").members == AUTO_MEMBERS["tabular"]
    assert resolve_spec("auto", "text").members == ("linear", "nb")
    assert "knn" not in resolve_spec("auto", "image", n_rows=KNN_MAX_ROWS + 1).members
    assert "knn" in resolve_spec("auto", "image", n_rows=KNN_MAX_ROWS).members


def test_named_specs_and_their_keys():
    spec = resolve_spec("hgb+linear", "tabular", seed=3)
    assert spec.members == ("hgb", "linear")
    assert spec.key.startswith("hgb+linear/tabular/seed=3/")
    assert resolve_spec("linear", "tabular").key != resolve_spec("linear", "tabular", seed=1).key


@pytest.mark.parametrize("name, message", [("forest", "unknown model 'forest'"), ("hgb+hgb", "listed twice")])
def test_bad_model_names_raise(name, message):
    with pytest.raises(EngineError, match=message):
        resolve_spec(name, "tabular")


def mixed_frame(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Numbers with gaps, a category with gaps, and a free-text column that alone carries the label."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    words = np.array(["great", "awful"], dtype=object)[y]
    filler = np.array([f"item{i}" for i in range(n)], dtype=object)  # unique: one-hot sees only noise
    X = pd.DataFrame({
        "x": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "color": np.where(rng.random(n) < 0.2, None, rng.choice(["red", "blue"], n)).astype(object),
        "comment": filler + " was " + words,
    })
    return X, y


SCHEMA = {"x": "numeric", "color": "categorical", "comment": "categorical"}


@pytest.mark.parametrize("members", ["hgb", "linear", "knn", "nb", "auto"])
def test_every_member_fits_mixed_columns_with_missing_values(members):
    X, y = mixed_frame(80)
    model = build_estimator(resolve_spec(members, "tabular"), Schema.from_mapping(SCHEMA))
    clone(model).fit(X, y)
    model.fit(X, y)
    unseen = pd.DataFrame({"x": [np.nan], "color": ["green"], "comment": ["never seen before"]})
    probs = model.predict_proba(unseen)
    assert probs.shape == (1, 2) and np.isclose(probs.sum(), 1.0)


def test_free_text_in_a_categorical_column_carries_signal():
    X, y = mixed_frame(200)
    model = build_estimator(resolve_spec("linear", "tabular"), Schema.from_mapping(SCHEMA))
    oof = out_of_fold_probabilities(model, X, y, 2, folds=5)
    assert (oof.probs.argmax(axis=1) == y).mean() > 0.95


def test_text_modality_reads_the_text_column_with_gaps():
    texts = pd.DataFrame({"note": ["good fun", "bad day", None, "good times", "bad luck", "good"] * 5})
    y = np.array([1, 0, 0, 1, 0, 1] * 5)
    model = build_estimator(resolve_spec("auto", "text"), Schema.from_mapping({"note": "text"}))
    model.fit(texts, y)
    assert model.predict(pd.DataFrame({"note": ["good good"]}))[0] == 1


def test_build_model_from_config():
    cfg = parse_config({"dataset": {"name": "t", "modality": "tabular", "id_column": "id", "label_column": "y",
                                    "feature_columns": ["x", "color"]}, "retrain": {"model": "linear"}})
    model, key = build_model(cfg, {"x": "numeric", "color": "categorical"})
    assert key.startswith("linear/tabular/")
    assert hasattr(model, "fit") and hasattr(model, "predict_proba")


def test_served_auto_is_the_svm_for_images_up_to_its_row_limit_and_the_mining_ensemble_elsewhere():
    assert resolve_spec("auto", "image", served=True).members == ("svm",)
    assert resolve_spec("auto", "image", served=True, n_rows=SVM_MAX_ROWS + 1).members == AUTO_MEMBERS["image"]
    assert resolve_spec("auto", "tabular", served=True).members == AUTO_MEMBERS["tabular"]
    assert resolve_spec("auto", "image").members == AUTO_MEMBERS["image"]  # mining keeps its ensemble


def test_the_svm_member_learns_categories_and_numbers_with_calibrated_probabilities():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"x": rng.normal(size=90), "color": rng.choice(["red", "blue", None], size=90)})
    y = np.where(X["color"].eq("red") | (X["x"] > 1), "yes", "no")
    model = build_estimator(resolve_spec("svm", "tabular"), Schema.from_mapping({"x": "numeric", "color": "categorical"}))
    model.fit(X, y)
    probs = model.predict_proba(X)
    assert probs.shape == (90, 2) and np.allclose(probs.sum(axis=1), 1.0)
    assert np.mean(model.predict(X) == y) > 0.9


def test_a_misspelt_served_model_is_a_config_error_naming_the_key():
    with pytest.raises(EngineError, match="retrain.model = 'svn': unknown model 'svn'"):
        check_names(parse_config({"dataset": {"name": "t", "modality": "image", "id_column": "id",
                                              "label_column": "y", "feature_columns": ["a"]},
                                  "retrain": {"model": "svn"}}))


def test_a_member_that_cannot_read_the_columns_says_so():
    with pytest.raises(EngineError, match="model 'hgb' needs numeric, categorical or image"):
        build_estimator(resolve_spec("hgb", "text"), Schema.from_mapping({"note": "text"}))
    with pytest.raises(EngineError, match="expected numeric, categorical, text, vector or image"):
        Schema.from_mapping({"x": "date"})

