"""CoNLL / BIO token files as NER rows: one row per sentence with ``text``, ``spans`` and ``sentence``.

A CoNLL file holds one token a line, its tag in the last whitespace-separated column (CoNLL-2003's
``word POS chunk tag``, or just ``word tag``), sentences separated by a blank line, ``-DOCSTART-``
lines skipped. The sentence's ``text`` is its tokens joined by one space (so character offsets are
exact for the text the engine stores), ``spans`` the entities of its BIO tags as ``{"start", "end",
"label"}`` character offsets (:mod:`data_engine.tasks.spans`), ``sentence`` its 1-based number in
the file. Tags are IOB2 (``B-PER``, ``I-PER``, ``O``); an ``I-`` tag after ``O`` or after another
type starts an entity (IOB1, as CoNLL-2003 ships). A tag that is none of these leaves the sentence's
``spans`` as the words "line N: tag ... is not O, B-type or I-type", so ingest quarantines the
sentence naming the line (nothing is dropped silently).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from data_engine.ingest.textscan import open_bytes
from data_engine.ingest.unreadable import UnreadableFile

SUFFIXES = (".conll", ".bio", ".iob", ".conll.gz", ".bio.gz", ".iob.gz")


def _sentence_row(tokens: list[tuple[str, str, int]], number: int) -> dict[str, object]:
    text, spans, start = "", [], 0
    current: dict[str, object] | None = None
    for word, tag, line in tokens:
        if text:
            text += " "
        start = len(text)
        text += word
        kind, _, typ = tag.partition("-")
        if tag == "O":
            current = None
            continue
        if kind not in ("B", "I") or not typ:
            return {"text": text, "spans": f"line {line}: tag {tag!r} is not O, B-type or I-type", "sentence": number}
        if kind == "B" or current is None or current["label"] != typ:
            current = {"start": start, "end": len(text), "label": typ}
            spans.append(current)
        else:
            current["end"] = len(text)
    return {"text": text, "spans": spans, "sentence": number}


def conll_rows(path: Path) -> Iterator[dict[str, object]]:
    """The sentences of the CoNLL file ``path`` (gunzipped when ``.gz``) as rows, in file order."""
    tokens: list[tuple[str, str, int]] = []
    number = 0
    with open_bytes(path) as raw:
        for line_no, raw_line in enumerate(raw, start=1):
            try:
                line = raw_line.decode("utf-8").strip()
            except UnicodeDecodeError:
                raise UnreadableFile(f"line {line_no} is not UTF-8 text") from None
            if line.startswith("-DOCSTART-"):
                continue
            if not line:
                if tokens:
                    number += 1
                    yield _sentence_row(tokens, number)
                    tokens = []
                continue
            parts = line.split()
            word, tag = (parts[0], parts[-1]) if len(parts) > 1 else (parts[0], "")
            tokens.append((word, tag, line_no))
    if tokens:
        yield _sentence_row(tokens, number + 1)


def write_jsonl(path: Path, out: Path) -> int:
    """Write ``path``'s sentences to the JSON Lines file ``out``; returns the number of sentences."""
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for row in conll_rows(path):
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n
