"""Single-label classification: one class per example, the engine's first task plug-in.

A label is one class name, stored and compared in the normalised spelling of
:mod:`data_engine.store.values` (so "1.0" and 1, or "cat " and "cat", are one label); a label that is
not one of ``dataset_classes`` is quarantined with the classes named. A reviewer picks one class (or
"not a valid example") from single-choice radio buttons with the model's suggestion pre-filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from data_engine.store.values import normalized_sql
from data_engine.tasks.base import TASKS, Task


@TASKS.register
class Classification(Task):
    """One class per example (``[dataset] task = "classification"``, the default)."""

    name = "classification"

    def label_sql(self, cell: str, plain: bool) -> str:
        """The class in its normalised spelling; '' reads as unlabeled."""
        return f"nullif({cell if plain else normalized_sql(cell)}, '')"

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """A label outside the fixed classes is quarantined, the classes named (first 200 characters)."""
        if not classes_known:
            return []
        return [(
            f"{label} IS NOT NULL AND {label} NOT IN (SELECT class_label FROM dataset_classes)",
            f"'label ' || left({label}, 40) || ' is not one of the classes (' || "
            "(SELECT left(string_agg(class_label, ', ' ORDER BY position), 200) FROM dataset_classes) || ')'",
        )]

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """Single-choice radio buttons: the classes, then ``discard``; the given label, the model's
        suggestion and the issue types in header lines (task data fields of the review stage)."""
        choices = "\n    ".join(f"<Choice value={quoteattr(c)}/>" for c in [*classes, discard])
        return f"""<View>
  <Header value="Given label: $given_label  |  model suggests: $suggested_label ($suggested_score)" size="4"/>
  <Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale)" size="5"/>
  {item}
  <Choices name="{from_name}" toName="{to_name}" choice="single-radio" showInLine="true" required="true">
    {choices}
  </Choices>
  <Header value="${partner_prefix}note" size="5"/>
  {partner}
</View>"""

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """The choice ``label`` selected."""
        return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": [label]}}]

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The choice picked in ``from_name`` (None when nothing was chosen)."""
        for region in result or ():
            if not isinstance(region, Mapping):
                continue
            if region.get("from_name") == from_name and region.get("type") == "choices":
                value = region.get("value")
                picked = value.get("choices") if isinstance(value, Mapping) else None
                # Only a list of text is a choice; anything else (a bare string, nested objects) is none.
                if isinstance(picked, list) and picked and isinstance(picked[0], str):
                    return picked[0]
        return None
