"""``bench detect --dataset ner-conll``: the NER bench on a CoNLL/BIO file named by
``$DATA_ENGINE_NER_FILE``, read by the engine's CoNLL reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_engine.bench.detect_ner import run_ner_detect_benchmark
from data_engine.bench.ner_corpus import NER_FILE_ENV, NoNerCorpus, corpus_texts, ner_corpus_file
from data_engine.demo.entities import make_texts
from data_engine.tasks.spans import Span

CONLL = "-DOCSTART- O\n\nAna NNP B-PSN\nLopes NNP I-PSN\nvisited VBD O\nKyoto NNP B-LOC\n. . O\n\nNothing O\n\n"


def _as_conll(texts: list[tuple[str, tuple[Span, ...]]]) -> str:
    """Space-separated words of generated texts with IOB2 tags (the generated entities end at spaces or
    before a final punctuation mark, so split it off)."""
    out = []
    for text, spans in texts:
        start = 0
        for word in text.replace(".", " .").replace(",", " ,").split():
            start = text.index(word, start)
            inside = [s for s in spans if s.start <= start < s.end]
            tag = "O" if not inside else ("B-" if inside[0].start == start else "I-") + inside[0].label
            out.append(f"{word} X {tag}")
            start += len(word)
        out.append("")
    return "\n".join(out) + "\n"


def test_the_file_is_named_by_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(NER_FILE_ENV, raising=False)
    with pytest.raises(NoNerCorpus, match=r"\$DATA_ENGINE_NER_FILE, which is not set"):
        ner_corpus_file()
    monkeypatch.setenv(NER_FILE_ENV, str(tmp_path / "none.conll"))
    with pytest.raises(NoNerCorpus, match=r"none.conll' is not a file"):
        ner_corpus_file()
    path = tmp_path / "tiny.txt"
    path.write_text(CONLL, encoding="utf-8")
    monkeypatch.setenv(NER_FILE_ENV, str(path))
    assert ner_corpus_file() == path
    assert corpus_texts(path) == [("Ana Lopes visited Kyoto .", (Span(0, 9, "PSN"), Span(18, 23, "LOC"))),
                                  ("Nothing", ())]
    path.write_text("Ana B-PSN\nLopes X-PSN\n", encoding="utf-8")
    with pytest.raises(NoNerCorpus, match=r"tiny.txt: line 2: tag 'X-PSN' is not O, B-type or I-type"):
        corpus_texts(path)


def test_the_bench_runs_on_a_conll_file_with_its_own_types(tmp_path: Path) -> None:
    path = tmp_path / "news.iob"
    texts = make_texts(200, seed=5)
    path.write_text(_as_conll(texts), encoding="utf-8")
    read = corpus_texts(path)
    assert len(read) == 200 and [len(s) for _, s in read] == [len(s) for _, s in texts]
    r = run_ner_detect_benchmark(rows=150, noise=0.2, seed=2, corpus=path)
    assert (r["dataset"], r["rows"], r["types"]) == ("ner-conll (news.iob)", 150, ["LOC", "ORG", "PER"])
    assert r["errors_by_kind"] == {"dropped": 7, "wrong_type": 11, "shifted": 2, "shifted_in_word": 3}
    # The engine's flags are cleanlab's call plus the 3 spans cut inside a word.
    assert r["engine_flagged_by_kind"] == {"dropped": 6, "wrong_type": 9, "shifted": 2, "shifted_in_word": 3}
    assert (r["engine"]["flagged"], r["engine"]["recall"]) == (21, 0.8696)
    assert (r["cleanlab_same_predictions"]["flagged"], r["cleanlab_same_predictions"]["recall"]) == (18, 0.7391)
