"""Label Studio ``<View>`` parts shared by the review configs of the tasks: the span, box and number
tasks' (:mod:`data_engine.tasks.ner_review`, :mod:`data_engine.tasks.detection`,
:mod:`data_engine.tasks.regression_review`) and the class and tag tasks' choices
(:mod:`data_engine.tasks.classification`, :mod:`data_engine.tasks.multilabel`): written once so that
the discard choice and the near-duplicate partner read the same in every task."""

from __future__ import annotations

from collections.abc import Sequence


def discard_and_partner(control: str, to_name: str, discard: str, partner_prefix: str, partner: str,
                        attrs: str = "") -> str:
    """The end of a review task's ``<View>`` body shared by the span, box and number tasks: a
    ``<Choices>`` named ``control`` (``attrs``: its extra attributes) with the one choice ``discard``,
    then the near-duplicate ``partner`` under its note line (see :meth:`Task.labeling_config`)."""
    from xml.sax.saxutils import quoteattr  # here: it loads urllib, http, ssl (30 ms)
    return f"""<Choices name="{control}" toName="{to_name}"{attrs}>
    <Choice value={quoteattr(discard)}/>
  </Choices>
  <Header value="${partner_prefix}note" size="5"/>
  {partner}"""


def regions_view(item: str, partner: str, classes: Sequence[str], *, tag: str, headers: Sequence[str], how: str,
                 from_name: str, to_name: str, discard: str, discard_control: str, partner_prefix: str) -> str:
    """A region task's ``<View>`` (spans on a text, boxes on an image): ``headers`` (XML lines), the
    ``tag`` control (``Labels``, ``RectangleLabels``) with one ``<Label>`` per class, the example
    ``item``, the instruction ``how`` and the discard choice (control ``discard_control``), then the
    near-duplicate ``partner``."""
    from xml.sax.saxutils import quoteattr  # here: it loads urllib, http, ssl (30 ms)
    options = "\n    ".join(f"<Label value={quoteattr(c)}/>" for c in classes)
    lines = "\n  ".join(headers)
    tail = discard_and_partner(discard_control, to_name, discard, partner_prefix, partner)
    return f"""<View>
  {lines}
  <{tag} name="{from_name}" toName="{to_name}">
    {options}
  </{tag}>
  {item}
  <Header value={quoteattr(how)} size="6"/>
  {tail}
</View>"""


def choices_view(item: str, partner: str, choices: Sequence[str], *, from_name: str, to_name: str,
                 partner_prefix: str, mode: str, headers: Sequence[str], below: str = "") -> str:
    """A review task's Label Studio ``<View>``: ``headers`` (XML lines), the example ``item``, the
    ``choices`` control (``mode``: its attributes, e.g. ``choice="multiple"``) after the line
    ``below``, then the near-duplicate ``partner`` under its note (see :meth:`Task.labeling_config`)."""
    from xml.sax.saxutils import quoteattr  # here: it loads urllib, http, ssl (30 ms)
    options = "\n    ".join(f"<Choice value={quoteattr(c)}/>" for c in choices)
    lines = "\n  ".join(headers)
    return f"""<View>
  {lines}
  {item}{below}
  <Choices name="{from_name}" toName="{to_name}" {mode}>
    {options}
  </Choices>
  <Header value="${partner_prefix}note" size="5"/>
  {partner}
</View>"""
