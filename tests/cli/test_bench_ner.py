"""``bench detect --dataset ner``: the engine's label flags on injected span errors beside cleanlab's
own token-classification call on the same stored predictions."""

from __future__ import annotations

from data_engine.bench.detect_ner import format_ner_result, run_ner_detect_benchmark


def test_engine_flags_are_cleanlabs_call_plus_the_boundaries_inside_words() -> None:
    r = run_ner_detect_benchmark(rows=300, noise=0.1, seed=3)
    assert r["corrupted"] == 29 and sum(r["errors_by_kind"].values()) == r["corrupted"]
    assert r["errors_by_kind"] == {"dropped": 6, "wrong_type": 12, "shifted": 7, "shifted_in_word": 4}
    engine, cleanlab = r["engine"], r["cleanlab_same_predictions"]
    # The engine's label check is cleanlab's call plus the 4 spans cut inside a word, which cleanlab's
    # token scores cannot see (the cut span tags the whole word).
    assert r["engine_flagged_by_kind"] == {"dropped": 6, "wrong_type": 11, "shifted": 5, "shifted_in_word": 4}
    assert (engine["flagged"], cleanlab["flagged"]) == (26, 22)
    assert (engine["precision"], engine["recall"]) == (1.0, 0.8966)
    assert (cleanlab["precision"], cleanlab["recall"]) == (1.0, 0.7586)
    # A user's tagger's JSONL rows read by the engine: cleanlab's flags on its arrays plus the slips.
    ext, own = r["external"]["engine"], r["external"]["cleanlab_same_predictions"]
    assert (ext["flagged"], ext["recall"], own["flagged"], own["recall"]) == (133, 1.0, 132, 0.9655)
    assert "cleanlab, same predictions" in format_ner_result(r) and "a user's tagger" in format_ner_result(r)
