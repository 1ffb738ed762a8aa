"""The regression task's review side (:class:`data_engine.tasks.regression.Regression` delegates to
it): the Label Studio labeling config of a ``<Number>`` answer beside a "not a valid example" choice,
the prediction pre-filled, a reviewer's regions read back as a number in the canonical spelling
(:mod:`data_engine.tasks.regression_values`), and several reviewers' numbers made one verdict
within :data:`CONSENSUS_TOLERANCE`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from data_engine.errors import EngineError
from data_engine.tasks import regression_values
from data_engine.tasks.review_views import discard_and_partner

# Several reviewers' numbers are one verdict when they all lie within this share of their median
# (or of the given value's magnitude when the median is 0) of each other: two people typing 120 and
# 121 for a reading agree; 120 and 12 do not, and the example stays pending for another opinion.
CONSENSUS_TOLERANCE = 0.05


def discard_control(from_name: str) -> str:
    """The name of the "not a valid example" choice beside the ``<Number>`` answer ``from_name``."""
    return f"{from_name}_invalid"


def labeling_config(item: str, partner: str, *, from_name: str, to_name: str, discard: str,
                    partner_prefix: str, label_range: tuple[float, ...] | None) -> str:
    """A ``<Number>`` answer (any step; within ``[dataset] label_range`` when set) pre-filled with the
    prediction (``label_range``: ``[dataset] label_range``, or None), a "not a valid example" choice, and header lines with the given value, the
    prediction and its interval (``label_note``, the label check's words)."""
    bounds = ""
    if label_range is not None:
        lo, hi = label_range
        bounds = f' min="{lo!r}" max="{hi!r}"'
    return f"""<View>
  <Header value="Given value: $given_label  |  model predicts: $suggested_label" size="4"/>
  <Header value="$label_note" size="5"/>
  <Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale)" size="5"/>
  {item}
  <Header value="The right value:" size="5"/>
  <Number name="{from_name}" toName="{to_name}" step="any"{bounds}/>
  {discard_and_partner(discard_control(from_name), to_name, discard, partner_prefix, partner,
                       ' choice="single" showInLine="true"')}
</View>"""


def prediction_result(label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
    """The number ``label`` in the ``<Number>`` (Label Studio's region ``{"type": "number",
    "value": {"number": x}}``); a label that is not a number (the discard answer) as the choice."""
    try:
        number = float(regression_values.canonical_number(label))
    except EngineError:
        return [{"from_name": discard_control(from_name), "to_name": to_name, "type": "choices",
                 "value": {"choices": [label]}}]
    return [{"from_name": from_name, "to_name": to_name, "type": "number", "value": {"number": number}}]


def answer_label(result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
    """The discard choice when picked (it wins over a number left in the field), else the number
    typed in ``from_name`` in the canonical spelling; None when neither (or malformed)."""
    number = None
    for region in result or ():
        if not isinstance(region, Mapping):
            continue
        value = region.get("value")
        if not isinstance(value, Mapping):
            continue
        if region.get("from_name") == discard_control(from_name) and region.get("type") == "choices":
            picked = value.get("choices")
            if isinstance(picked, list) and picked and isinstance(picked[0], str):
                return picked[0]
        elif region.get("from_name") == from_name and region.get("type") == "number" and number is None:
            try:
                number = regression_values.canonical_number(value.get("number"))
            except EngineError:
                continue
    return number


def consensus(labels: Sequence[str]) -> str | None:
    """The median of the reviewers' numbers when every number lies within :data:`CONSENSUS_TOLERANCE`
    of it (relative; absolute 1e-9 around 0), else None (they disagree); a discard answer counts
    as a number nobody else gave: the majority of discards wins, a split is a disagreement."""
    import numpy as np

    if not labels:
        return None
    numbers, other = [], []
    for v in labels:
        try:
            numbers.append(float(regression_values.canonical_number(v)))
        except EngineError:
            other.append(v)
    if other:
        if len(set(other)) == 1 and len(other) > len(numbers):
            return other[0]
        return None
    median = float(np.median(numbers))
    tolerance = max(CONSENSUS_TOLERANCE * abs(median), 1e-9)
    if max(abs(n - median) for n in numbers) > tolerance:
        return None
    return regression_values.canonical_number(median)


def agreement(labels: Sequence[str], verdict: str) -> float:
    """The share of ``labels`` within :data:`CONSENSUS_TOLERANCE` of ``verdict`` (equality for a discard)."""
    if not labels:
        return 0.0
    try:
        target = float(verdict)
    except ValueError:
        return sum(v == verdict for v in labels) / len(labels)
    tolerance = max(CONSENSUS_TOLERANCE * abs(target), 1e-9)
    near = 0
    for v in labels:
        try:
            near += abs(float(v) - target) <= tolerance
        except ValueError:
            continue
    return near / len(labels)
