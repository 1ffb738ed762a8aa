"""``bench detect --dataset ner``: the engine's label flags on injected span errors beside cleanlab's
own token-classification call on the same stored predictions."""

from __future__ import annotations

from data_engine.bench.detect_ner import format_ner_result, run_ner_detect_benchmark


def test_engine_flags_match_cleanlabs_call_on_the_same_predictions() -> None:
    r = run_ner_detect_benchmark(rows=300, noise=0.1, seed=3)
    assert r["corrupted"] > 10 and sum(r["errors_by_kind"].values()) == r["corrupted"]
    engine, cleanlab = r["engine"], r["cleanlab_same_predictions"]
    # The engine's label check is cleanlab's call: the same texts flagged.
    assert (engine["precision"], engine["recall"], engine["flagged"]) == \
        (cleanlab["precision"], cleanlab["recall"], cleanlab["flagged"])
    assert engine["recall"] >= 0.6 and engine["precision"] >= 0.8
    # A user's tagger's JSONL rows read by the engine: the same flags and ranking as cleanlab's call on its arrays.
    ext, own = r["external"]["engine"], r["external"]["cleanlab_same_predictions"]
    assert ext == own and ext["recall"] >= 0.8
    assert "cleanlab, same predictions" in format_ner_result(r) and "a user's tagger" in format_ner_result(r)
