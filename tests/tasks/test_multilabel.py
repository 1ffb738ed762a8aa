"""The multi-label task's pieces: tag sets as matrices, per-tag out-of-fold probabilities, cleanlab's
multi-label issues with the suspect tags named, the review config and answers, the consensus rule,
metrics and the paired gate test."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from data_engine.review.labelstudio.labeling import DISCARD_CHOICE
from data_engine.tasks import Multilabel
from data_engine.tasks import multilabel as multilabel_module
from data_engine.tasks.multilabel_metrics import metric_rows, paired_bootstrap, tag_metrics
from data_engine.tasks.multilabel_oof import TagwiseClassifier, assign_tag_folds
from data_engine.tasks.tagsets import NotATagSet, consensus, parse

TAGS = ["billing", "bug", "urgent"]
task = Multilabel()


def test_encode_and_decode_are_inverse() -> None:
    labels = ['["billing","urgent"]', "[]", '["bug"]']
    y = task.encode(labels, TAGS)
    assert y.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert task.decode(y, TAGS) == labels
    with pytest.raises(Exception, match="tag 'refund' is not one of the classes"):
        task.encode(['["refund"]'], TAGS)


def test_parse_reads_lists_arrays_and_separated_tags() -> None:
    assert parse("urgent|billing") == ["billing", "urgent"]
    assert parse('["b", "a", "a"]') == ["a", "b"]
    assert parse([2, 1.0]) == ["1", "2"]
    assert parse("[]") == []
    for bad, why in [("", "unlabeled"), ("[1", "not valid JSON"), ('[{"a": 1}]', "is not text"),
                     ("[[1]]", "is not text"), ("a||b", "empty tag")]:
        with pytest.raises(NotATagSet, match=why):
            parse(bad)


def test_the_discard_answer_is_the_review_stages() -> None:
    assert multilabel_module.DISCARD == DISCARD_CHOICE


def test_review_config_is_multiple_choice_with_the_suspect_tags() -> None:
    xml = task.labeling_config('<Text name="item" value="$text"/>', "", TAGS, from_name="verdict", to_name="item",
                               discard=DISCARD_CHOICE, partner_prefix="duplicate_")
    assert 'choice="multiple"' in xml and "$label_note" in xml and "$suggested_label" in xml
    assert [c for c in TAGS + [DISCARD_CHOICE] if f'<Choice value="{c}"/>' in xml] == TAGS + [DISCARD_CHOICE]


def test_prediction_and_answer_round_trip() -> None:
    result = task.prediction_result('["billing","urgent"]', from_name="verdict", to_name="item")
    assert result[0]["value"] == {"choices": ["billing", "urgent"]}
    assert task.answer_label(result, from_name="verdict") == '["billing","urgent"]'
    # Ticked in another order and with stray regions: the same set.
    answer = [{"from_name": "verdict", "type": "choices", "value": {"choices": ["urgent", "billing"]}},
              {"from_name": "other", "type": "choices", "value": {"choices": ["bug"]}}, "junk"]
    assert task.answer_label(answer, from_name="verdict") == '["billing","urgent"]'
    assert task.answer_label([], from_name="verdict") == "[]"  # submitted with nothing ticked: no tags
    assert task.answer_label(None, from_name="verdict") is None  # type: ignore[arg-type]
    discard = [{"from_name": "verdict", "type": "choices", "value": {"choices": ["bug", DISCARD_CHOICE]}}]
    assert task.answer_label(discard, from_name="verdict") == DISCARD_CHOICE
    assert task.prediction_result(DISCARD_CHOICE, from_name="verdict", to_name="item")[0]["value"] == {
        "choices": [DISCARD_CHOICE]}


def test_answer_problems_name_the_unknown_tag() -> None:
    choices = [*TAGS, DISCARD_CHOICE]
    assert task.answer_problem('["billing","urgent"]', choices) is None
    assert task.answer_problem("[]", choices) is None and task.answer_problem(DISCARD_CHOICE, choices) is None
    assert task.answer_problem('["billing","refund"]', choices) == "tag 'refund' is not one of the tags"
    assert task.answer_problem('["not a valid example","bug"]', choices) == "tag 'not a valid example' is not one of the tags"


def test_consensus_is_the_per_tag_majority() -> None:
    a, ab, b, none = '["a"]', '["a","b"]', '["b"]', "[]"
    assert consensus([ab, a, ab]) == ab  # b: 2 of 3
    assert consensus([ab, a, none]) == a  # a: 2 of 3, b: 1 of 3
    assert consensus([a, b, none]) == none  # every tag 1 of 3: no tag
    assert consensus([ab, a]) is None  # b: 1 of 2, an even split
    assert consensus([a, a]) == a
    assert task.consensus([DISCARD_CHOICE, DISCARD_CHOICE, a]) == DISCARD_CHOICE
    assert task.consensus([DISCARD_CHOICE, a]) is None
    # A discard counts as "no tags" for the tag votes when it is outvoted.
    assert task.consensus([a, a, DISCARD_CHOICE]) == a
    assert task.consensus([ab, a, DISCARD_CHOICE]) == a
    assert task.agreement([ab, a, DISCARD_CHOICE], a) == pytest.approx((0.5 + 1 + 0) / 3)


def test_wrong_answer_flips_one_tag() -> None:
    rng = random.Random(0)
    for _ in range(20):
        wrong = set(json.loads(task.wrong_answer('["billing"]', TAGS, rng)))
        assert len(wrong ^ {"billing"}) == 1


def test_metrics_have_the_right_values() -> None:
    gold = ['["a","b"]', '["a"]', "[]", '["b"]']
    pred = ['["a"]', '["a"]', '["b"]', '["b"]']
    m = tag_metrics(gold, pred, ["a", "b", "c"])
    # Pooled: tp = 3 (a, a, b), fp = 1 (b on row 3), fn = 1 (b on row 1): F1 = 6 / 8.
    assert m["micro_f1"] == pytest.approx(0.75)
    # a: tp 2, fp 0, fn 0 -> 1; b: tp 1, fp 1, fn 1 -> 0.5; c is in no gold set: not averaged.
    assert m["macro_f1"] == pytest.approx(0.75)
    assert m["exact_match"] == m["accuracy"] == pytest.approx(0.5)
    assert set(m) == set(task.metric_names()) == {"micro_f1", "macro_f1", "exact_match", "accuracy"}
    assert task.class_recall(gold, pred) == {"a": (1.0, 2), "b": (0.5, 2)}
    figures = {**m, "per_class_recall": {"a": 1.0, "b": 0.5}}
    assert task.evaluate_output(figures, 4) == {"micro_f1": 0.75, "macro_f1": 0.75, "exact_match": 0.5,
                                                "per_tag_recall": {"a": 1.0, "b": 0.5}, "n": 4}
    # Per-tag probabilities read as the tags at p >= 0.5.
    probs = np.array([[0.9, 0.2, 0.0], [0.6, 0.4, 0.1], [0.1, 0.7, 0.0], [0.2, 0.8, 0.3]])
    assert tag_metrics(gold, probs, ["a", "b", "c"]) == m


def test_vectorised_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(1)
    t = rng.integers(0, 2, (3, 50, 4))
    p = rng.integers(0, 2, (3, 50, 4))
    for b in range(3):
        assert metric_rows(t, p, "micro_f1")[b] == pytest.approx(f1_score(t[b], p[b], average="micro"))
        assert metric_rows(t, p, "macro_f1")[b] == pytest.approx(f1_score(t[b], p[b], average="macro", zero_division=0))
        assert metric_rows(t, p, "exact_match")[b] == pytest.approx(np.mean((t[b] == p[b]).all(axis=1)))


def test_the_paired_gate_test_sees_a_better_candidate_and_no_difference() -> None:
    rng = np.random.default_rng(2)
    gold = rng.integers(0, 2, (300, 4))
    good = np.where(rng.random(gold.shape) < 0.9, gold, 1 - gold)
    bad = np.where(rng.random(gold.shape) < 0.7, gold, 1 - gold)
    better = paired_bootstrap(gold, good, bad, "micro_f1", alpha=0.05)
    assert better.diff > 0.1 and better.p_better < 0.01 and better.p_worse > 0.99 and better.low > 0
    assert better.method == "paired bootstrap" and "micro_f1 +0." in better.describe("micro_f1")
    same = paired_bootstrap(gold, good, good, "micro_f1", alpha=0.05)
    assert (same.diff, same.p_worse, same.p_better) == (0.0, 1.0, 1.0)
    # Exact match is a mean over examples: McNemar's test on "every tag right".
    exact = paired_bootstrap(gold, good, bad, "exact_match", alpha=0.05)
    right_good, right_bad = (good == gold).all(axis=1), (bad == gold).all(axis=1)
    assert exact.method == "McNemar exact" and exact.wins == int((right_good & ~right_bad).sum())
    assert exact.diff == pytest.approx(right_good.mean() - right_bad.mean())
    # Stored tag sets work the same as matrices.
    labels = task.decode(gold, list("abcd"))
    assert task.paired_test(labels, task.decode(good, list("abcd")), task.decode(bad, list("abcd")), "micro_f1",
                            alpha=0.05).diff == pytest.approx(better.diff)


def test_predict_output_gives_tags_with_probabilities() -> None:
    out = task.predict_output(np.array([0.91, 0.2, 0.5]), TAGS)
    assert out == {"tags": ["billing", "urgent"], "probabilities": {"billing": 0.91, "bug": 0.2, "urgent": 0.5}}
    table = task.predict_table(np.array([[0.91, 0.2, 0.5], [0.1, 0.1, 0.1]]), TAGS)
    assert list(table["predicted_tags"]) == ['["billing","urgent"]', "[]"]
    assert table["predicted_score"] == pytest.approx([0.91 * 0.8 * 0.5, 0.9 ** 3])


def _two_tags(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Tag 0 when x0 > 0, tag 1 when x1 > 0 (independent): a problem a linear model learns."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 3)), columns=["x0", "x1", "x2"])
    return X, np.column_stack([X.x0 > 0, X.x1 > 0]).astype(np.int8)


def test_tagwise_classifier_handles_rare_and_constant_tags() -> None:
    X, Y = _two_tags()
    Y = np.column_stack([Y, np.zeros(len(Y), dtype=np.int8), np.zeros(len(Y), dtype=np.int8)])
    Y[:2, 3] = 1  # two examples carry tag 3: too few to calibrate, still learned
    model = TagwiseClassifier(LogisticRegression(), tags=("a", "b", "never", "rare")).fit(X, Y)
    p = model.predict_proba(X)
    assert p.shape == (len(X), 4) and np.all(p[:, 2] == 0.0)
    assert ((p[:, 0] >= 0.5) == Y[:, 0]).mean() > 0.95 and ((p[:, 1] >= 0.5) == Y[:, 1]).mean() > 0.95
    assert list(task.predict(model, X, ["b", "a", "c"])[0]) == [p[0, 1], p[0, 0], 0.0]
    # A served model (tag names known) answers stored tag sets, as a classifier answers class names.
    i = int(np.flatnonzero((p[:, 0] >= 0.5) & (p[:, 1] < 0.5))[0])
    assert model.predict(X.iloc[[i]]).tolist() == ['["a"]']


def test_folds_are_seeded_and_name_rare_tags() -> None:
    _, Y = _two_tags(50)
    Y = np.column_stack([Y, np.zeros(50, dtype=np.int8)])
    Y[0, 2] = 1
    folds, n_folds, rare = assign_tag_folds(Y, folds=5, seed=3)
    assert n_folds == 5 and rare == (2,) and sorted(np.bincount(folds)) == [10] * 5
    assert np.array_equal(folds, assign_tag_folds(Y, folds=5, seed=3)[0])


def test_out_of_fold_probabilities_find_flipped_tags_and_name_them() -> None:
    X, Y = _two_tags(400, seed=4)
    noisy = Y.copy()
    rng = np.random.default_rng(5)
    flipped = rng.choice(len(Y), 20, replace=False)
    tag = rng.integers(0, 2, 20)
    noisy[flipped, tag] ^= 1
    members = task.members_for({"linear": LogisticRegression(), "prior": DummyClassifier(strategy="prior")})
    oof = task.out_of_fold(members, X, noisy, ["a", "b"], folds=5, seed=0)
    assert oof.probs.shape == (400, 2) and oof.n_folds == 5
    # The likelihood puts the weight on the member that models the data, not on the tags' base rates.
    assert oof.weights["linear"] > 0.9
    issues = task.label_issues(noisy, oof.probs, ["a", "b"])
    truth = np.zeros(400, dtype=bool)
    truth[flipped] = True
    top = np.argsort(issues.scores)[:20]
    assert truth[top].mean() >= 0.8  # precision = recall at the number of flipped labels
    assert issues.is_issue[flipped].mean() >= 0.8
    for i, k in zip(flipped, tag):
        if issues.is_issue[i]:
            word = "wrong" if noisy[i, k] else "missing"
            assert f"tag {['a', 'b'][k]!r} likely {word}" in issues.detail[i]
    i = int(flipped[0])
    assert issues.suggested[i] == task.decode(Y[i:i + 1], ["a", "b"])[0] or not issues.is_issue[i]


def test_the_sentences_become_text_with_the_sentiment_and_the_site_as_tags(monkeypatch) -> None:
    from pathlib import Path

    from tests.multilabel_support import sentence_tags

    folder = Path(__file__).resolve().parents[1] / "cases" / "sentences"
    monkeypatch.setenv("DATA_ENGINE_SENTIMENT_DIR", str(folder))
    train, gold = sentence_tags(noise=0.2, seed=0)
    assert train.tags == gold.tags == ["amazon", "imdb", "positive", "yelp"]
    # 15 sentences: a fifth (3) kept as clean gold, 2 of the other 12 tag sets given one wrong tag.
    assert (len(train.frame), len(gold.frame), len(train.noisy), gold.noisy) == (12, 3, 2, set())
    expected = {}
    for site in ("amazon", "imdb", "yelp"):
        for line in (folder / f"{site}{'_cells' if site == 'amazon' else ''}_labelled.txt").read_text().splitlines():
            text, score = line.rsplit("\t", 1)
            expected[text.strip()] = sorted([site] + (["positive"] if score == "1" else []))
    assert expected['The acting was wooden, "dreadful" even.'] == ["imdb"]
    for part in (train, gold):
        for row in part.frame.itertuples():
            assert part.truth[row.id] == expected[row.sentence]
            wrong = set(row.tags) ^ set(part.truth[row.id])
            assert len(wrong) == (1 if row.id in part.noisy else 0)
    assert set(train.frame["sentence"]) | set(gold.frame["sentence"]) == set(expected)
