"""NER label issues: cleanlab's token-classification call per text and per token.

* Flags: :func:`cleanlab.token_classification.filter.find_label_issues` (confident learning over
  every token of every text, the texts' tokens flattened; a text is flagged when any of its tokens
  is). ``n_jobs=1``: cleanlab's multiprocessing path fails inside Dagster's spawned step processes.
* Scores: :func:`cleanlab.token_classification.rank.get_label_quality_scores`, the label quality
  score of each text (the least self-confident token, ``sentence_score_method="min"``; low =
  suspect) and of each token.
* Detail: the flagged tokens of a text in reading order, each with its given tag, the model's tag
  and probability; the suggestion is the model's span set (each token's most likely tag).
* Boundaries inside a word (:func:`boundary_slips`, hand-written: no library checks character spans
  against a tokenisation): a span tags every token it overlaps, so a span ending mid-word ("Pari"
  of "Paris") gives the same token tags as the whole word and no token score can see it. Such a
  span is flagged by its own reason, ``span_boundary: span 'Pari' [10, 14) ends inside the word
  'Paris'``, scored :data:`BOUNDARY_SCORE` (ranked before the texts cleanlab flags), whatever the
  model says. It needs the texts; without them only cleanlab's check runs.

Both predictions and given labels go through :mod:`data_engine.tasks.tokens` (one tokenisation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from data_engine.tasks import tokens as tk
from data_engine.tasks.base import LabelIssues
from data_engine.tasks.label_issues import cleanlab_copies_released
from data_engine.tasks.spans import canonical, spans_of

# Flagged tokens named in one text's detail line.
DETAIL_TOKENS = 3
# The label quality score of a text with a span boundary inside a word: the span is wrong by the
# engine's own tokenisation (not a model's guess), so it goes first among the label issues.
BOUNDARY_SCORE = 0.0
BOUNDARY_REASON = "span_boundary"


def boundary_slips(labels: Sequence[str], texts: Sequence[str]) -> dict[int, list[str]]:
    """The spans of ``labels`` (n span sets) whose start or end falls strictly inside a token of
    their text ``texts`` (n,) by :func:`data_engine.tasks.tokens.offsets`, as ``{row: [reason, ...]}``
    (rows without one left out), each reason ``"span_boundary: span 'Pari' [10, 14) ends inside the
    word 'Paris'"``. Spans past the text's end are left to ingest's checks."""
    out: dict[int, list[str]] = {}
    for i, (label, text) in enumerate(zip(labels, texts)):
        spans = spans_of(str(label))
        if not spans or not isinstance(text, str):
            continue
        off = tk.offsets(text)
        for s in spans:
            cut = []
            for side, at in (("starts", s.start), ("ends", s.end)):
                hit = np.flatnonzero((off[:, 0] < at) & (at < off[:, 1]))
                if len(hit):
                    a, b = off[hit[0]]
                    cut.append(f"{side} inside the word {text[a:b]!r}")
            if cut:
                out.setdefault(i, []).append(
                    f"{BOUNDARY_REASON}: span {text[s.start:s.end]!r} [{s.start}, {s.end}) {' and '.join(cut)}")
    return out


def token_arrays(labels: Sequence[str], pred: np.ndarray, types: Sequence[str]) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Per text: token offsets (m, 2), given IO tags (m,) and tag probabilities (m, 1 + K) from stored
    span sets ``labels`` (n,) and packed predictions ``pred`` (n, width)."""
    offs, given, probs = [], [], []
    for label, row in zip(labels, np.asarray(pred, dtype=float)):
        off, p = tk.unpack(row, len(types))
        offs.append(off)
        given.append(tk.spans_to_tags(spans_of(str(label)), off, types))
        probs.append(p)
    return offs, given, probs


def suggested_spans(pred: np.ndarray, types: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The model's span set per row of packed ``pred`` (n, width) and its score (n,): the probability
    of the least sure token's most likely tag (1.0 for a text without tokens)."""
    labels, scores = [], []
    for row in np.asarray(pred, dtype=float):
        off, p = tk.unpack(row, len(types))
        labels.append(canonical(tk.tags_to_spans(p.argmax(axis=1), off, types)) if len(p) else "[]")
        scores.append(float(p.max(axis=1).min()) if len(p) else 1.0)
    return labels, np.asarray(scores, dtype=float)


def find_span_issues(labels: Sequence[str], pred: np.ndarray, types: Sequence[str],
                     texts: Sequence[str] | None = None) -> LabelIssues:
    """The label-error check of n texts' span sets ``labels`` (n,) against out-of-fold packed
    predictions ``pred`` (n, width). ``texts`` (optional, (n,)) words the detail with the tokens and
    turns on the check of span boundaries inside words (:func:`boundary_slips`).

    Texts without tokens are scored 1 and never flagged by cleanlab (it reads at least one token per
    text).
    """
    from cleanlab.token_classification.filter import find_label_issues
    from cleanlab.token_classification.rank import get_label_quality_scores

    n = len(labels)
    if n < 2 or not types:
        return LabelIssues.none("needs at least two labeled texts and one entity type")
    offs, given, probs = token_arrays(labels, pred, types)
    has = np.array([len(g) > 0 for g in given])
    if has.sum() < 2:
        return LabelIssues.none("needs at least two labeled texts with tokens")
    keep = np.flatnonzero(has)
    g = [given[i].tolist() for i in keep]
    p = [np.clip(probs[i], 0.0, 1.0) for i in keep]
    # Over the flattened tokens through cleanlab.filter.find_label_issues: its split copies go as in the
    # single-label check (and the module globals' last copy after the call).
    with cleanlab_copies_released():
        issues = find_label_issues(g, p, n_jobs=1)
    sentence, token_scores = get_label_quality_scores(g, p)
    scores = np.ones(n)
    scores[keep] = np.asarray(sentence, dtype=float)
    flagged_tokens: dict[int, list[int]] = {}
    for i, j in issues:
        flagged_tokens.setdefault(int(keep[i]), []).append(int(j))
    slips = boundary_slips(labels, texts) if texts is not None else {}
    flags = np.zeros(n, dtype=bool)
    flags[list(flagged_tokens)] = True
    flags[list(slips)] = True
    scores[list(slips)] = BOUNDARY_SCORE
    tags = ["O", *types]
    suggested, suggested_p = suggested_spans(pred, types)
    detail = []
    for i in range(n):
        if i not in flagged_tokens:
            detail.append("; ".join(slips[i]) if i in slips else "spans agree with the model")
            continue
        words = list(slips.get(i, []))
        for j in sorted(flagged_tokens[i])[:DETAIL_TOKENS]:
            s, e = offs[i][j]
            tok = f"{texts[i][s:e]!r} " if texts is not None else "characters "
            m = int(probs[i][j].argmax())
            words.append(f"{tok}[{s}, {e}): given {tags[given[i][j]]}, model {tags[m]} (p={probs[i][j][m]:.2f})")
        more = len(flagged_tokens[i]) - DETAIL_TOKENS
        detail.append("; ".join(words) + (f"; and {more} more token{'s' if more > 1 else ''}" if more > 0 else ""))
    summary = {"texts": int(n), "flagged": int(flags.sum()), "flagged_tokens": int(len(issues)),
               "tokens": int(sum(len(x) for x in given)), BOUNDARY_REASON: len(slips), "scheme": "IO",
               "token_pattern": tk.TOKEN_PATTERN.pattern}
    return LabelIssues(scores, flags, suggested, suggested_p, detail, summary)
