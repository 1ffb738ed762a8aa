"""The model registry: skops artifacts, sha256 checks, trusted types, the models table."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from data_engine.mine.models import build_model
from data_engine.ship import registry
from data_engine.ship.registry import ArtifactError, load_artifact, save_artifact
from data_engine.store.config import parse_config
from data_engine.store.warehouse import open_warehouse
from tests.loop_support import make_home


def double(x):  # a function defined in a test module: not a type the registry trusts
    return x * 2


def _tiny_frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "num": rng.normal(size=n),
        "cat": rng.choice(["a", "b", "c", None], size=n).astype(object),
        "text": rng.choice(["good film", "bad movie", "so so", None], size=n).astype(object),
    })
    y = np.where(frame["num"] > 0, "pos", "neg")
    return frame, y


@pytest.mark.parametrize("modality, schema", [
    ("image", {"num": "numeric"}),
    ("tabular", {"num": "numeric", "cat": "categorical"}),
    ("text", {"text": "text", "cat": "categorical"}),
])
def test_default_models_round_trip_through_skops(tmp_path, modality, schema):
    """Every modality's default ("auto") model saves within TRUSTED_TYPES and loads back identical."""
    from threadpoolctl import threadpool_limits

    ds = {"name": "t", "modality": modality, "id_column": "id", "label_column": "y"}
    if modality == "text":
        ds |= {"text_column": "text", "feature_columns": ["cat"]}
    else:
        ds |= {"feature_columns": [c for c in schema]}
    cfg = parse_config({"dataset": ds})
    frame, y = _tiny_frame()
    est, _ = build_model(cfg, schema)
    with threadpool_limits(1):
        est.fit(frame[list(schema)], y)
    path = tmp_path / "m.skops"
    sha = save_artifact(est, path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    loaded = load_artifact(path, sha)
    np.testing.assert_allclose(loaded.predict_proba(frame[list(schema)]), est.predict_proba(frame[list(schema)]))


def test_a_tampered_artifact_is_refused_before_loading(tmp_path):
    from sklearn.linear_model import LogisticRegression

    frame, y = _tiny_frame()
    path = tmp_path / "m.skops"
    sha = save_artifact(LogisticRegression().fit(frame[["num"]], y), path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256 mismatch"):
        load_artifact(path, sha)
    path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_artifact(path, sha)


def test_untrusted_types_are_refused_at_save_and_at_load(tmp_path):
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    frame, y = _tiny_frame()
    model = make_pipeline(FunctionTransformer(double), LogisticRegression()).fit(frame[["num"]], y)
    path = tmp_path / "bad.skops"
    with pytest.raises(ArtifactError, match="test_registry.double"):
        save_artifact(model, path)
    assert not path.exists() and not list(tmp_path.iterdir())  # no temp file left behind
    # A file written around the registry, with a matching sha256: still refused by type.
    sio.dump(model, path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(ArtifactError, match="untrusted types"):
        load_artifact(path, sha)


def test_models_table_records_and_finds_models(tmp_path):
    from sklearn.linear_model import LogisticRegression

    home = make_home(tmp_path)
    frame, y = _tiny_frame()
    model = LogisticRegression().fit(frame[["num"]], y)
    with open_warehouse(home) as con:
        assert registry.current_champion(con) is None and registry.latest_candidate(con) is None
        a = registry.register_model(con, home, model, label_snapshot=7, train_size=120, model_spec="lr",
                                    classes=["neg", "pos"], input_schema={"num": "numeric"}, params={"C": 1.0})
        b = registry.register_model(con, home, model, label_snapshot=9, train_size=120, model_spec="lr",
                                    classes=["neg", "pos"], input_schema={"num": "numeric"})
        assert (a.version, b.version) == (1, 2)
        assert registry.latest_candidate(con).version == 2
        registry.set_status(con, 2, "refused", "worse")
        registry.set_status(con, 1, "champion", "first")
        registry.record_metrics(con, 1, {"accuracy": 0.9})
        champ = registry.current_champion(con)
        assert champ.version == 1 and champ.metrics == {"accuracy": 0.9} and champ.params == {"C": 1.0}
        assert registry.latest_candidate(con) is None
        assert registry.get_model(con, 2).reason == "worse"
        with pytest.raises(Exception, match="no model version 5"):
            registry.get_model(con, 5)
    assert (home.models / "model-v1.skops").is_file()
    assert registry.load_model(home, champ).predict(frame[["num"]]).tolist() == model.predict(frame[["num"]]).tolist()


def test_a_stale_candidate_is_never_the_default_after_a_newer_model(tmp_path):
    """train twice, promote the newer, train a third that is refused: `deploy promote` must name
    the refusal, not gate and promote the stale first candidate (a rollback)."""
    from sklearn.linear_model import LogisticRegression

    home = make_home(tmp_path)
    frame, y = _tiny_frame()
    model = LogisticRegression().fit(frame[["num"]], y)
    with open_warehouse(home) as con:
        for snapshot in (7, 7, 9):
            registry.register_model(con, home, model, label_snapshot=snapshot, train_size=120, model_spec="lr",
                                    classes=["neg", "pos"], input_schema={"num": "numeric"})
        registry.set_status(con, 2, "champion", "first")
        assert registry.latest_candidate(con).version == 3
        registry.set_status(con, 3, "refused", "worse")
        assert registry.latest_candidate(con) is None
        assert "model v3 was refused" in registry.no_candidate_message(con)


def test_a_text_model_saves_its_vocabulary_in_a_fixed_number_of_zip_entries(tmp_path):
    import zipfile

    from sklearn.feature_extraction.text import TfidfVectorizer

    from data_engine.mine.features import text_features
    from data_engine.mine.text_tfidf import TextTfidf

    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(400)]
    entries = []
    for n in (50, 400):  # the vocabularies differ in size by hundreds of n-grams
        texts = [" ".join(rng.choice(words, 6)) for _ in range(n)]
        model = text_features(char=True).fit(texts)
        word = model[-1].transformer_list[0][1]
        assert isinstance(word, TextTfidf)
        assert {type(i) for i in word.vocabulary_.values()} == {int}
        # The same vocabulary and features as scikit-learn's own TfidfVectorizer with these parameters.
        plain = TfidfVectorizer(**word.get_params()).fit(texts)
        assert word.vocabulary_ == {t: int(i) for t, i in plain.vocabulary_.items()}
        assert (word.transform(texts) != plain.transform(texts)).nnz == 0
        path = tmp_path / f"m{n}.skops"
        sha = save_artifact(model, path)  # refuses a type outside registry.TRUSTED_TYPES
        entries.append(len(zipfile.ZipFile(path).namelist()))
        loaded = load_artifact(path, sha)
        assert (loaded.transform(texts) != model.transform(texts)).nnz == 0
    # Before, each numpy index of the vocabulary was an entry of its own (hundreds more for n=400).
    assert entries[0] == entries[1]


def test_a_text_vocabulary_is_saved_as_arrays_and_loads_back_the_same(tmp_path):
    import pickle
    import zipfile

    from data_engine.mine.features import text_features

    texts = ["héllo wörld", "naïve café au lait", "日本語 テキスト", "a b", "hello café"] * 3
    model = text_features(char=True).fit(texts)
    sha = save_artifact(model, tmp_path / "m.skops")
    schema = zipfile.ZipFile(tmp_path / "m.skops").read("schema.json").decode()
    # No per-term JSON node: the terms are not in the schema, the arrays are files of the zip.
    assert '"vocabulary_"' not in schema and "lait" not in schema and '"vocabulary_bytes_"' in schema
    for loaded in (load_artifact(tmp_path / "m.skops", sha), pickle.loads(pickle.dumps(model))):
        for (_, saved), (_, fitted) in zip(loaded[-1].transformer_list, model[-1].transformer_list):
            assert saved.vocabulary_ == fitted.vocabulary_ and {type(i) for i in saved.vocabulary_.values()} == {int}
        assert (loaded.transform(texts) != model.transform(texts)).nnz == 0
