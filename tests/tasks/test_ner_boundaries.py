"""NER: a span whose start or end falls inside a word (of the engine's tokenisation) is flagged by
its own reason, whatever the model says; cleanlab's token scores cannot see it (the span tags the
whole word)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from data_engine.demo.entities import TYPES, inject_errors, make_texts
from data_engine.tasks import tokens as tk
from data_engine.tasks.ner import NER
from data_engine.tasks.ner_issues import BOUNDARY_SCORE, boundary_slips, find_span_issues
from data_engine.tasks.spans import Span, canonical, spans_of

TEXT = "We met Ana Lopes in Paris today."
TYPES3 = ["LOC", "PER"]


def test_boundaries_inside_a_word_are_named_with_the_span_and_the_word() -> None:
    labels = [
        canonical([Span(7, 16, "PER"), Span(20, 24, "LOC")]),  # 'Pari' ends inside 'Paris'
        canonical([Span(21, 25, "LOC")]),  # 'aris' starts inside 'Paris'
        canonical([Span(8, 28, "PER")]),  # 'na Lopes in Paris to': both ends inside words
        canonical([Span(7, 16, "PER"), Span(20, 25, "LOC")]),  # whole words
        canonical([Span(20, 26, "LOC")]),  # 'Paris ' ends on a space: not inside a word
        "[]",
    ]
    assert boundary_slips(labels, [TEXT] * len(labels)) == {
        0: ["span_boundary: span 'Pari' [20, 24) ends inside the word 'Paris'"],
        1: ["span_boundary: span 'aris' [21, 25) starts inside the word 'Paris'"],
        2: ["span_boundary: span 'na Lopes in Paris to' [8, 28) starts inside the word 'Ana' "
            "and ends inside the word 'today'"],
    }


def _sure_predictions(texts: list[str], true_labels: list[str], types: list[str]) -> np.ndarray:
    """Packed predictions that give each token's true tag probability 0.9."""
    offs, probs = [], []
    for text, label in zip(texts, true_labels):
        off = tk.offsets(text)
        tags = tk.spans_to_tags(spans_of(label), off, types)
        p = np.full((len(off), len(types) + 1), 0.1 / len(types))
        p[np.arange(len(off)), tags] = 0.9
        offs.append(off)
        probs.append(p)
    return tk.pack(offs, probs, len(types))


def test_a_slipped_boundary_is_flagged_first_and_only_with_the_texts() -> None:
    texts = [TEXT, "Then Bo Li went to Oslo.", TEXT, "Rain in Lima."]
    truth = [canonical([Span(7, 16, "PER"), Span(20, 25, "LOC")]), canonical([Span(5, 10, "PER"), Span(19, 23, "LOC")]),
             canonical([Span(7, 16, "PER"), Span(20, 25, "LOC")]), canonical([Span(8, 12, "LOC")])]
    given = list(truth)
    given[2] = canonical([Span(7, 15, "PER"), Span(20, 25, "LOC")])  # 'Ana Lope'
    pred = _sure_predictions(texts, truth, TYPES3)
    found = find_span_issues(given, pred, TYPES3, texts)
    assert found.is_issue.tolist() == [False, False, True, False]
    assert found.scores[2] == BOUNDARY_SCORE and (found.scores[[0, 1, 3]] > 0.5).all()
    assert found.detail[2] == "span_boundary: span 'Ana Lope' [7, 15) ends inside the word 'Lopes'"
    assert found.summary["span_boundary"] == 1
    # Without the texts cleanlab's token check alone runs: the slip tags the same tokens as the truth.
    assert not find_span_issues(given, pred, TYPES3).is_issue.any()
    # The task reads the texts from the inputs' text column.
    task = NER(None)
    task.ds = type("DS", (), {"text_column": "body"})()
    y = task.encode(given, TYPES3)
    assert task.label_issues(y, pred, TYPES3, pd.DataFrame({"body": texts})).is_issue.tolist() == [False, False, True, False]
    assert not task.label_issues(y, pred, TYPES3).is_issue.any()


def test_injected_slips_leave_one_boundary_inside_a_word() -> None:
    examples = inject_errors(make_texts(300, seed=1), rate=0.3, seed=2, inside_words=1.0)
    slipped = [i for i, e in enumerate(examples) if e.error == "shifted_in_word"]
    assert len(slipped) > 10 and not any(e.error == "shifted" for e in examples)
    found = boundary_slips([e.given_label for e in examples], [e.text for e in examples])
    assert sorted(found) == slipped and all(len(v) == 1 for v in found.values())
    # The default draws no extra random numbers: no slips, the same corrupted texts as before the option.
    plain = inject_errors(make_texts(300, seed=1), rate=0.3, seed=2)
    assert not boundary_slips([e.given_label for e in plain], [e.text for e in plain])
    kinds = [e.error for e in plain]
    assert [kinds.count(k) for k in ("", "dropped", "wrong_type", "shifted")] == [223, 32, 27, 18]
    assert [i for i, k in enumerate(kinds) if k][:8] == [2, 10, 17, 25, 26, 27, 44, 75]
    assert {s.label for e in plain for s in e.true_spans} == set(TYPES)


def test_the_mining_step_queues_the_slipped_spans_first_with_their_reason(tmp_path) -> None:
    """Through the real run (``mine_step``): the label detector gets the texts from mining's input
    columns, so the slips are queued first by their own reason, not only in a direct call."""
    import json

    from data_engine.steps import ingest_step, mine_step
    from data_engine.store.warehouse import open_warehouse
    from tests.homes import make_home

    texts = make_texts(24, seed=3)
    home = make_home(tmp_path, {"dataset": {"name": "news", "modality": "text", "task": "ner", "id_column": "id",
                                            "label_column": "spans", "text_column": "text", "feature_columns": [],
                                            "classes": list(TYPES)},
                                "mining": {"folds": 3, "n_jobs": 1}, "review": {"budget": 24}, "gate": {"metric": "f1"}})
    rows = []
    for i, (text, spans) in enumerate(texts):
        spans = list(spans)
        if i in (2, 9, 15):  # the first span loses its last character: its end falls inside a word
            spans[0] = Span(spans[0].start, spans[0].end - 1, spans[0].label)
        rows.append({"id": f"n{i:02d}", "text": text, "spans": json.loads(canonical(spans))})
    path = home.landing / "news.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    ingest_step(home, [path])
    run_id = mine_step(home).summary.run_id
    with open_warehouse(home, read_only=True) as con:
        queued = con.execute(
            "SELECT q.rank, q.example_id, i.reason FROM review_queue q JOIN issues i ON i.run_id = q.run_id "
            "AND i.example_id = q.example_id AND i.issue_type = 'label' AND i.is_issue "
            "WHERE q.run_id = ? AND i.reason LIKE 'span_boundary%' ORDER BY q.rank", [run_id]).fetchall()
    assert queued == [(1, "n02", "span_boundary: span 'Jonas Ber' [0, 9) ends inside the word 'Berg'"),
                      (2, "n09", "span_boundary: span 'Chen We' [0, 7) ends inside the word 'Wei'"),
                      (3, "n15", "span_boundary: span 'Blue Su' [10, 17) ends inside the word 'Sun'")]
