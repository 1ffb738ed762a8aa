"""`bench active` runs end to end on a small digits setting and reports curves and the gain over random."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from data_engine.cli import main
from data_engine.bench.active import Curve, summarise


def test_bench_active_small_run_prints_curves(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--home", str(tmp_path / "home"), "bench", "active", "--datasets", "digits", "--seeds", "1",
                 "--start", "50", "--pool", "200", "--rounds", "1", "--round-size", "20",
                 "--strategies", "diverse_minibatch,random", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)["digits"]
    assert result["labels"] == [50, 70] and result["seeds"] == 1
    assert set(result["mean_accuracy"]) == {"diverse_minibatch", "random"}
    assert result["gain_points"][0] == 0.0  # both start from the same 50 labels


def test_summary_gain_is_paired_by_seed() -> None:
    curves = [Curve("d", "diverse_minibatch", 0, [1, 2], [0.5, 0.8]), Curve("d", "random", 0, [1, 2], [0.5, 0.7]),
              Curve("d", "diverse_minibatch", 1, [1, 2], [0.6, 0.6]), Curve("d", "random", 1, [1, 2], [0.6, 0.65])]
    out = summarise(curves)
    assert out["gain_points"] == [0.0, 2.5] and out["worst_seed_gain_points"] == [0.0, -5.0]
    assert out["above_random_every_round"] is True


def test_unknown_dataset_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--home", str(tmp_path / "home"), "bench", "active", "--datasets", "mnist"]) != 0
    assert "--datasets: unknown 'mnist'" in capsys.readouterr().err


def test_bench_embeds_text_as_the_engine_does_and_shares_the_cache(tmp_path: Path) -> None:
    import numpy as np
    import pandas as pd

    from data_engine.bench.datasets import BenchDataset
    from data_engine.bench.embedding import engine_embedding
    from data_engine.mine.embedders.e5 import embed_texts

    texts = ["great phone, works well", "terrible service", "i loved it", "never again", "great phone, works well"]
    ds = BenchDataset("s", "text", pd.DataFrame({"sentence": texts}), np.array(["pos", "neg", "pos", "neg", "pos"],
                      dtype=object), {"sentence": "text"}, text_column="sentence")
    cache = tmp_path / "cache" / "bench-embeddings.parquet"
    name, vectors = engine_embedding(ds, cache=cache)
    assert name == "e5-small" and vectors.shape == (5, 384)
    np.testing.assert_allclose(vectors, embed_texts(texts), atol=1e-5)
    assert cache.is_file() and not list(cache.parent.glob(".*.tmp"))
    # A second run reads the cache (same vectors) and leaves the file as it was.
    stamp = cache.stat().st_mtime_ns
    assert np.array_equal(engine_embedding(ds, cache=cache)[1], vectors) and cache.stat().st_mtime_ns == stamp
    # Tabular data's "auto" embedding is the model's own feature space: nothing to embed.
    tabular = BenchDataset("t", "tabular", pd.DataFrame({"x": [1.0, 2.0]}), np.array(["a", "b"], dtype=object),
                           {"x": "numeric"})
    assert engine_embedding(tabular, cache=cache) == ("tfidf", None)
