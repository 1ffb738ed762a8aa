"""A task that trains its own model in place of the modality's members names that model wherever a
model is named (trial 22: a detection home called its box detector 'hgb' and compared 'linear',
'knn' and 'hgb+linear+knn', all the same detector)."""

from __future__ import annotations

from data_engine.mine.candidates import CandidateScore, ServedChoice
from data_engine.tasks import NER, Classification, Detection, Multilabel, model_name


def test_boxes_and_spans_name_their_own_model_others_their_members():
    key = "hgb+linear+knn/image/seed=0/v2/folds=5"
    assert model_name(Detection(), key) == "box-detector/image/seed=0/v2/folds=5"
    assert model_name(Detection(), "hgb") == "box-detector"
    assert model_name(NER(), "embedding+linear+nb/text/seed=0/emb=e5-small/v2") == "tagger/text/seed=0/emb=e5-small/v2"
    assert model_name(Classification(), key) == key
    assert model_name(Multilabel(), "linear") == "linear"
    # The user's trainer is the model: its name stays.
    assert model_name(Detection(), "command/image/seed=0/cmd=0123456789ab/v2") == "command/image/seed=0/cmd=0123456789ab/v2"


def test_the_served_choice_line_names_the_task_model():
    score = CandidateScore("hgb", ("hgb",), None, None, figures={"map50": 0.9765})
    choice = ServedChoice("hgb", ("hgb",), "best out-of-fold map50", "map50", (score,), {}, 120, True)
    assert choice.line(Detection()) == ("served model box-detector: best out-of-fold map50 (out-of-fold map50 on 120 "
                                        "labels: box-detector 0.9765)")
    assert choice.line() == "served model hgb: best out-of-fold map50 (out-of-fold map50 on 120 labels: hgb 0.9765)"
