"""`bench detect --dataset digit-tags`: a real multi-label set built from the bundled digits by
documented rules, tag errors injected, the engine's flags beside cleanlab's own multi-label call."""

from __future__ import annotations

import numpy as np

from data_engine.bench.detect_multilabel import DIGIT_TAGS, inject_tag_errors, load_digit_tags, tag_cells


def test_each_digit_carries_the_tags_of_its_properties() -> None:
    from sklearn.datasets import load_digits

    X, Y, tags = load_digit_tags()
    digit = load_digits().target
    assert X.shape == (1797, 64) and Y.shape == (1797, 4) and tags == sorted(DIGIT_TAGS)
    by_digit = {int(d): tuple(Y[digit == d][0]) for d in range(10)}
    assert all((Y[digit == d] == by_digit[d]).all() for d in range(10))  # a rule of the digit, nothing else
    names = {d: {t for t, on in zip(tags, by_digit[d]) if on} for d in range(10)}
    assert names[1] == set() and names[8] == {"closed_loop", "even", "large"} and names[7] == {"large", "prime"}
    assert tag_cells(Y[[0]], tags) == ["closed_loop|even"] and tag_cells(np.zeros((1, 4), int), tags) == ["[]"]


def test_an_injected_error_adds_or_removes_exactly_one_tag() -> None:
    _, Y, _ = load_digit_tags()
    noisy, idx = inject_tag_errors(Y, 0.1, seed=3)
    changed = np.flatnonzero((noisy != Y).any(axis=1))
    assert len(idx) == 180 and changed.tolist() == idx.tolist()
    assert (np.abs(noisy - Y).sum(axis=1)[idx] == 1).all()
    again, _ = inject_tag_errors(Y, 0.1, seed=3)
    assert (again == noisy).all()


def test_flags_at_least_as_good_as_cleanlabs_multilabel_call() -> None:
    """Measured (10 % errors): seed 0 engine flags F1 0.911, first 180 0.872; cleanlab on 5-fold
    one-vs-rest logistic regression 0.598 and 0.556 (see docs/mining.md for seed 1)."""
    from data_engine.bench.detect_multilabel import run_multilabel_detect_benchmark

    result = run_multilabel_detect_benchmark(noise=0.1, seed=0, n_jobs=1)
    engine, baseline = result["engine"], result["baseline"]
    assert engine["f1"] >= baseline["f1"] and engine["top_k_precision"] >= baseline["top_k_precision"]
    assert engine["f1"] > 0.8
