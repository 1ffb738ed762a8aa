"""The per-arm line of ``bench detect`` for boxes, digit boxes and NER: one formatter
(``bench.scores.flag_line``), each benchmark's text as it printed before it was shared."""

from __future__ import annotations

from data_engine.bench.detect_boxes import format_boxes_result
from data_engine.bench.detect_digit_boxes import format_digit_boxes_result
from data_engine.bench.detect_ner import format_ner_result
from data_engine.bench.scores import flag_line

ENGINE = {"precision": 0.8125, "recall": 0.65, "f1": 0.7222, "flagged": 16, "top_k": 20, "top_k_precision": 0.7,
          "queue_length": 40}
CLEANLAB = {"precision": 1.0, "recall": 0.05, "f1": 0.0952, "flagged": 1, "top_k": 20, "top_k_precision": 0.35,
            "queue_length": 40}
ENGINE_LINE = "precision 0.812  recall 0.650  F1 0.722  flagged 16  top-20 precision 0.700"
CLEANLAB_LINE = "precision 1.000  recall 0.050  F1 0.095  flagged 1  top-20 precision 0.350"
KINDS = {"dropped": 5, "shifted": 7}
ARM = {"engine": ENGINE, "cleanlab_same_predictions": CLEANLAB, "engine_flagged_by_kind": {"dropped": 4, "shifted": 3},
       "map50_vs_truth": 0.7729}
BOXES = {"rows": 120, "corrupted": 12, "errors_by_kind": KINDS, "seed": 0, "boxes": 300, "baseline": ARM,
         "external": ARM, "external_imperfect": ARM}


def test_flag_line_pads_the_name_and_rounds_to_three_places() -> None:
    assert flag_line("engine", ENGINE) == "engine" + " " * 23 + ENGINE_LINE
    assert flag_line("engine", ENGINE, width=26, indent="  ") == "  engine" + " " * 21 + ENGINE_LINE


def test_the_box_benchmarks_print_their_arms_with_it() -> None:
    arm = [f"  engine{' ' * 21}{ENGINE_LINE}", f"  cleanlab, same predictions {CLEANLAB_LINE}",
           "  engine flags by error kind: dropped 4/5, shifted 3/7"]
    assert format_boxes_result(BOXES).splitlines() == [
        "bench detect --dataset boxes: 120 drawn scenes, 12 with a box error (dropped 5, shifted 7; seed 0)",
        "baseline predictions (mAP@0.5 vs truth 0.7729):", *arm,
        "external predictions (mAP@0.5 vs truth 0.7729):", *arm,
        "external_imperfect predictions (mAP@0.5 vs truth 0.7729):", *arm]
    arm[0] = f"  engine (flags, queue)      {ENGINE_LINE}"
    assert format_digit_boxes_result(BOXES).splitlines() == [
        "bench detect --dataset digit-boxes: 120 scenes of handwritten digits (300 boxes), 12 with a box error "
        "(dropped 5, shifted 7; seed 0)",
        "built-in detector, out of fold (mAP@0.5 vs truth 0.7729):", *arm,
        "a good detector's boxes, landed (mAP@0.5 vs truth 0.7729):", *arm]


def test_the_ner_benchmark_prints_its_arms_with_it() -> None:
    r = {"dataset": "ner", "rows": 240, "types": ["LOC", "PER"], "corrupted": 24, "seed": 1, "errors_by_kind": KINDS,
         "engine_flagged_by_kind": {"dropped": 4, "shifted": 3}, "engine": ENGINE, "cleanlab_same_predictions": CLEANLAB,
         "external": {"engine": CLEANLAB, "cleanlab_same_predictions": ENGINE}}
    assert format_ner_result(r).splitlines() == [
        "bench detect --dataset ner: 240 texts (LOC, PER), 24 with a span error (seed 1)",
        f"engine (label flags, queue)  {ENGINE_LINE}",
        f"cleanlab, same predictions   {CLEANLAB_LINE}",
        "engine flags by error kind: dropped 4/5, shifted 3/7",
        "a user's tagger's predictions (JSONL tokens and probabilities, read by the engine):",
        f"engine{' ' * 23}{CLEANLAB_LINE}",
        f"cleanlab, same predictions   {ENGINE_LINE}"]
