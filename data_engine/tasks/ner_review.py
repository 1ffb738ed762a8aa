"""The NER task's review side (:class:`data_engine.tasks.ner.NER` delegates to it): the Label Studio
labeling config of ``<Labels>`` on ``<Text>``, the model's spans as pre-marked regions, a reviewer's
regions read back as a stored span set, the check of an answer, and the simulated reviewer's wrong
answer. Span sets are :mod:`data_engine.tasks.spans`' canonical JSON."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from data_engine.tasks import spans as sp
from data_engine.tasks.review_views import regions_view

DISCARD = "not a valid example"  # the review stage's answer (review.labelstudio.labeling.DISCARD_CHOICE)
# The discard choice's control is the answer control's name with this suffix.
DISCARD_SUFFIX = "_discard"


def labeling_config(item: str, partner: str, classes: Sequence[str], *, from_name: str, to_name: str,
                    discard: str, partner_prefix: str) -> str:
    """``<Labels>`` on the text (one label per type), a ``<Choices>`` for ``discard``, and header
    lines with the given spans, the model's and the suspect tokens (task field ``label_note``)."""
    headers = ('<Header value="Given spans: $given_label" size="5"/>',
               '<Header value="Model suggests: $suggested_label ($suggested_score)" size="5"/>',
               '<Header value="Suspect tokens: $label_note" size="5"/>',
               '<Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale)" size="5"/>')
    how = ("Mark every entity (select its characters after picking its type); fix or delete wrong "
           f"spans. No spans: no entities. Or tick '{discard}'.")
    return regions_view(item, partner, classes, tag="Labels", headers=headers, how=how, from_name=from_name,
                        to_name=to_name, discard=discard, discard_control=f"{from_name}{DISCARD_SUFFIX}",
                        partner_prefix=partner_prefix)


def prediction_result(label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
    """One Label Studio text region per span: ``value`` with character offsets ``start``/``end``
    and ``labels`` [type] (no region for ``[]``); the discard answer as the discard choice."""
    if label == DISCARD:
        return [{"from_name": f"{from_name}{DISCARD_SUFFIX}", "to_name": to_name, "type": "choices",
                 "value": {"choices": [label]}}]
    return [{"id": f"s{i}", "from_name": from_name, "to_name": to_name, "type": "labels",
             "value": {"start": s.start, "end": s.end, "labels": [s.label]}}
            for i, s in enumerate(sp.spans_of(label))]


def answer_label(result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
    """The marked spans as a stored span set (a submitted annotation with none is ``[]``); the
    discard choice overrides any spans; None when ``result`` is not a list. Malformed regions
    (no integer offsets, no type) are ignored."""
    if not isinstance(result, list):
        return None
    found: list[sp.Span] = []
    for region in result:
        if not isinstance(region, Mapping):
            continue
        value = region.get("value")
        if not isinstance(value, Mapping):
            continue
        if region.get("from_name") == f"{from_name}{DISCARD_SUFFIX}":
            chosen = value.get("choices")
            if isinstance(chosen, list) and DISCARD in chosen:
                return DISCARD
            continue
        if region.get("from_name") != from_name or region.get("type") != "labels":
            continue
        start, end, types = value.get("start"), value.get("end"), value.get("labels")
        if (isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool)
                and not isinstance(end, bool) and isinstance(types, list) and types and isinstance(types[0], str)):
            found.append(sp.Span(start, end, types[0]))
    return sp.canonical(found)


def answer_problem(label: str, choices: Sequence[str]) -> str | None:
    """The discard answer, or a valid span set of the dataset's types (no empty or overlapping
    span); else what is wrong."""
    if label == DISCARD:
        return None
    try:
        spans = sp.parse(label)
    except sp.NotASpanSet as exc:
        return str(exc)
    found = sp.problems(spans, max((s.end for s in spans), default=0),
                        [c for c in choices if c != DISCARD])
    return found[0] if found else None


def wrong_answer(truth: str, classes: Sequence[str], rng: random.Random) -> str:
    """The true spans with one entity dropped or retyped (uniformly); a text without entities gets
    a one-character entity at its start."""
    spans = sp.spans_of(truth)
    if not spans:
        return sp.canonical([sp.Span(0, 1, rng.choice(list(classes)))])
    i = rng.randrange(len(spans))
    others = [c for c in classes if c != spans[i].label]
    if others and rng.random() < 0.5:
        spans[i] = sp.Span(spans[i].start, spans[i].end, rng.choice(others))
    else:
        del spans[i]
    return sp.canonical(spans)
