"""A text column in which a TF-IDF finds no term (no word in any text: punctuation codes, empty
notes; or character n-grams each in one text only): scikit-learn stops with "empty vocabulary;
perhaps the documents only contain stop words". The engine's TF-IDF fits it to no term, one all-zero
feature (``data_engine.mine.text_tfidf.TextTfidf.no_terms_``), so the other n-grams and columns
still count in mining, training and predict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_engine.cli import main
from data_engine.mine.features import text_features
from data_engine.mine.text_tfidf import TextTfidf
from data_engine.steps import ingest_step, mine_step
from tests.homes import make_home

# Punctuation codes, one per label: no word n-gram anywhere, character n-grams that tell them apart.
CODES = {"?": "question", "!!": "shout", "...": "pause"}


def test_a_column_without_a_term_gives_one_zero_feature(tmp_path):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from data_engine.ship.registry import load_artifact, save_artifact

    texts = pd.Series(list(CODES) * 4)
    with pytest.raises(ValueError, match="empty vocabulary"):
        TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit(texts)
    model = text_features(char=True)
    X = model.fit_transform(texts)
    word, char = (t for _, t in model[-1].transformer_list)
    assert word.no_terms_ and word.vocabulary_ == {} and not char.no_terms_
    # One zero column for the words, then the 18 character n-grams of " ? ", " !! ", " ... ".
    assert X.shape == (12, 1 + len(char.vocabulary_)) and len(char.vocabulary_) == 18
    assert X[:, 0].nnz == 0 and np.allclose(X[:, 1:].toarray(), char.transform(texts).toarray())
    # A later text with words gets no word feature either: the column learnt none.
    assert word.transform(["a real sentence"]).shape == (1, 1) and word.transform(["a real sentence"]).nnz == 0
    # Every text empty (or missing): no term in either part, one zero column each.
    empty = text_features(char=True).fit_transform(pd.Series(["", None, ""]))
    assert empty.shape == (3, 2) and empty.nnz == 0
    # Saved and loaded like any fitted model (skops, registry's trusted types).
    path = tmp_path / "m.skops"
    loaded = load_artifact(path, save_artifact(model, path))
    assert (loaded.transform(texts) != X).nnz == 0
    # A character space with every n-gram in one text only (min_df=2) has no term either.
    assert TextTfidf(analyzer="char_wb", ngram_range=(2, 5), min_df=2).fit_transform(["ab", "cd"]).shape == (2, 1)


def test_punctuation_codes_are_mined_trained_and_predicted(tmp_path, capsys):
    config = """\
[dataset]
name = "codes"
modality = "text"
id_column = "id"
label_column = "label"
text_column = "text"

[mining]
embedding = "tfidf"
n_jobs = 1
"""
    home = make_home(tmp_path, config)
    codes = list(CODES) * 40
    frame = pd.DataFrame({"id": [f"c{i}" for i in range(len(codes))], "text": codes,
                          "label": [CODES[c] for c in codes]})
    frame.to_csv(home.landing / "train.csv", index=False)
    ingest_step(home, [home.landing / "train.csv"])
    summary = mine_step(home).summary
    assert summary.n_labeled == 120 and summary.counts["label"] == 0
    # Said once, naming the column, in the run's column findings (CLI lines and Dagster metadata).
    termless = {"type": "no_terms", "column": "text", "figure": 0.0, "reason": (
        "no word in its 120 texts checked: the models read that part as one all-zero feature (empty, "
        "punctuation-only or too few texts)")}
    assert summary.dataset_issues == [termless] and summary.as_metadata()["dataset_issues"] == [termless]
    h = ["--home", str(home.root)]
    capsys.readouterr()
    assert main([*h, "mine"]) == 0
    out = capsys.readouterr().out
    assert out.count("no_terms") == 1 and f"column 'text': no_terms (0): {termless['reason']}\n" in out
    assert main([*h, "train"]) == 0
    new = tmp_path / "new.csv"
    pd.DataFrame({"id": ["n0", "n1", "n2", "n3"], "text": ["...", "?", "!!", "words at last"]}).to_csv(new, index=False)
    capsys.readouterr()
    assert main([*h, "predict", str(new), "--version", "1", "--out", str(tmp_path / "out.csv")]) == 0
    out = pd.read_csv(tmp_path / "out.csv")
    assert list(out["id"]) == ["n0", "n1", "n2", "n3"]
    assert list(out["predicted_label"][:3]) == ["pause", "question", "shout"]


def test_the_surface_features_of_an_empty_text_column_are_its_statistics():
    from data_engine.mine.surface import surface_features

    frame = pd.DataFrame({"note": [""] * 60, "x": np.arange(60.0)})
    X = surface_features(frame, {"note": "text", "x": "numeric"}, "tabular")
    # One zero column for the n-grams, then the 9 text statistics and the number's 6, standardised.
    assert X.shape == (60, 1 + 9 + 6) and X[:, 0].nnz == 0
    assert surface_features(frame[["x"]], {"x": "numeric"}, "tabular").shape == (60, 6)


def test_one_text_fits_the_character_tfidf_to_no_term():
    """One row (a gold set of one, a fitted subset of one): no character n-gram can be in two texts
    under ``min_df=2``; scikit-learn raised "max_df corresponds to < documents than min_df"."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    from data_engine.mine.components import CappedSVD

    text = ["a single gold sentence"]
    model = text_features(char=True)
    X = model.fit_transform(text)
    word, char = (t for _, t in model[-1].transformer_list)
    # The 7 word n-grams (4 words, 3 pairs) with their TF-IDF, then one zero column for the characters.
    assert not word.no_terms_ and len(word.vocabulary_) == 7 and char.no_terms_ and char.vocabulary_ == {}
    assert X.shape == (1, 8) and X[:, 7].nnz == 0
    assert np.allclose(X[:, :7].toarray(), np.full((1, 7), 1 / np.sqrt(7)))
    assert model.transform(["another sentence", "x"]).shape == (2, 8)
    # The tfidf embedder's text block on that one row: one dimension, the normalised vector.
    block = make_pipeline(text_features(char=True), CappedSVD(100, random_state=0), Normalizer())
    assert np.allclose(np.abs(block.fit_transform(text)), [[1.0]])


def test_each_text_column_without_terms_is_named_once():
    from data_engine.mine.columns import column_issues

    frame = pd.DataFrame({"code": ["?", "!!", "", None] * 10, "note": ["good film", "bad film"] * 20,
                          "tiny": ["ab", "cd"] + ["ef gh"] * 38})
    report = column_issues(frame, np.array([0, 1] * 20), {"code": "text", "note": "text", "tiny": "text"})
    assert [(i["type"], i["column"], i["figure"]) for i in report.issues] == [("no_terms", "code", 0.0)]
    assert report.issues[0]["reason"].startswith("no word in its 40 texts checked: the models read that part")
    # Every text empty: neither words nor character n-grams.
    empty = column_issues(pd.DataFrame({"code": [""] * 3}), np.array([0, 1, 0]), {"code": "text"})
    assert [i["reason"] for i in empty.issues] == [
        "no word and no character n-gram seen in two texts in its 3 texts checked: the models read this column "
        "as one all-zero feature (empty, punctuation-only or too few texts)"]


def test_a_few_worded_texts_among_many_empty_ones_are_terms():
    """The no-terms check reads every labeled row, not a sample: 3 worded texts among 6,000 empty or
    punctuation-only ones (beyond the 5,000 rows the model-based checks sample) are terms the models
    keep, as the fitted TF-IDF shows."""
    from data_engine.mine.columns import SAMPLE_ROWS, column_issues

    n = 6003
    # The worded texts sit in 3 of the rows the model-based checks' sample (seed 0) leaves out.
    rng = np.random.default_rng(0)
    unsampled = np.setdiff1d(np.arange(n), rng.choice(np.arange(n), SAMPLE_ROWS, replace=False))[:3]
    assert list(unsampled) == [3, 4, 11]
    blank = pd.Series((["", "?", "!!", None] * 1501)[:n])
    blank[unsampled] = ["good film", "bad film", "fine film"]
    none = pd.Series((["", "?", "!!", None] * 1501)[:n])
    frame = pd.DataFrame({"blank": blank, "none": none})
    report = column_issues(frame, np.arange(n) % 2, {"blank": "text", "none": "text"})
    assert [i for i in report.issues if i["type"] == "no_terms"] == [{
        "type": "no_terms", "column": "none", "figure": 0.0, "reason": (
            "no word in its 6003 texts checked: the models read that part as one all-zero feature (empty, "
            "punctuation-only or too few texts)")}]
    # What the models' TF-IDF learns on the same rows agrees.
    for column, words in (("blank", 7), ("none", 0)):  # good, bad, fine, film and the 3 pairs
        model = text_features(char=True).fit(frame[column])
        word, char = (t for _, t in model[-1].transformer_list)
        assert (word.no_terms_, len(word.vocabulary_), char.no_terms_) == (words == 0, words, False)


@pytest.mark.parametrize("texts, params, kept", [
    (["?", "!!"], {}, False),                                 # empty vocabulary
    (["a b", "c"], {"min_df": 2}, False),                     # after pruning, no terms remain
    (["a b", "a c"], {"min_df": 2}, True),
    (["only one"], {"min_df": 2}, False),                     # max_df corresponds to < documents than min_df
    (["a b", "a c", "a d"], {"max_df": 2}, True),             # a bound by max_df: b, c, d kept
    (["a", "a", "a"], {"max_df": 2}, False),                  # a in 3 texts, above max_df
    (["a b", "a b c"], {"max_df": 0.5}, True),                # c in one text of two
    (["the of", "and"], {"stop_words": "english"}, False),    # only stop words
    ([], {}, False),
])
def test_keeps_terms_decides_as_the_fit_does(texts, params, kept):
    from sklearn.feature_extraction.text import TfidfVectorizer

    from data_engine.mine.text_tfidf import keeps_terms

    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b", **params)
    assert keeps_terms(vectorizer, texts) is kept
    if kept:
        vectorizer.fit(texts)
    else:
        with pytest.raises(ValueError):
            vectorizer.fit(texts)
    fitted = TextTfidf(token_pattern=r"(?u)\b\w+\b", **params).fit(texts)
    assert fitted.no_terms_ is (not kept) and (len(fitted.vocabulary_) > 0) is kept
