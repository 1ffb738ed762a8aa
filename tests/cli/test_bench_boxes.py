"""``bench detect --dataset boxes``: the engine's box-error check beside cleanlab's own object-detection
call on the same predictions, for the baseline's out-of-fold boxes and a good and a weaker detector's
boxes landed as JSONL rows and read by the engine."""

from __future__ import annotations

from data_engine.bench.detect_boxes import format_boxes_result, run_boxes_detect_benchmark


def test_engine_matches_cleanlabs_call_and_finds_most_injected_box_errors() -> None:
    r = run_boxes_detect_benchmark(rows=90, noise=0.25, seed=7, folds=3)
    assert r["corrupted"] >= 10 and sum(r["errors_by_kind"].values()) == r["corrupted"]
    for name in ("baseline", "external", "external_imperfect"):
        engine, cleanlab = r[name]["engine"], r[name]["cleanlab_same_predictions"]
        assert (engine["precision"], engine["recall"], engine["flagged"], engine["top_k_precision"]) == \
            (cleanlab["precision"], cleanlab["recall"], cleanlab["flagged"], cleanlab["top_k_precision"])
        assert engine == cleanlab
        if name != "external_imperfect":
            assert engine["precision"] >= 0.8 and engine["recall"] >= 0.4
    # a good detector's boxes: every missing box is found, and the ranking puts the corrupted scenes first
    ext = r["external"]
    assert ext["engine_flagged_by_kind"]["missing"] == r["errors_by_kind"]["missing"]
    assert ext["engine"]["top_k_precision"] >= 0.9
    assert "cleanlab, same predictions" in format_boxes_result(r)
