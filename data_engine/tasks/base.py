"""The task plug-in: what a kind of label (one class, tags, a number, boxes, spans) means to each stage.

A :class:`Task` answers, for its kind of label, the questions a stage asks instead of the stage
assuming one class per example. The stages look the configured task up by ``[dataset] task``
(:func:`data_engine.tasks.task_for`); a new kind of label is a subclass registered in
:data:`TASKS` (or installed through the entry-point group ``data_engine.tasks``), see
docs/architecture.md "Adding a task".

This package sits above the store and compute and below the stages: it imports only
``data_engine.store``, ``data_engine.compute``, :mod:`data_engine.plugins` and libraries.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from data_engine.plugins import Registry


class Task(ABC):
    """One kind of label. Subclasses set ``name`` (the ``[dataset] task`` value) and implement every method.

    SQL fragments are DuckDB expressions over one batch's rows (ingest is set-based SQL over the
    raw rows, :mod:`data_engine.ingest.validate`); a column is passed already quoted.
    """

    name: str = ""

    @abstractmethod
    def label_sql(self, cell: str, plain: bool) -> str:
        """Ingest: a VARCHAR SQL expression turning the raw label ``cell`` into the stored label.

        ``plain``: every cell of the column is already in the normalised spelling (ASCII, no
        surrounding spaces; :func:`data_engine.store.values.all_plain`), so it may be kept as is.
        The stored spelling is the one labels are compared in (a label is "changed" when this
        value differs), e.g. one class name in its normalised spelling; '' or NULL is unlabeled.
        """

    @abstractmethod
    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """Ingest: ``(condition, reason)`` SQL pairs over the stored ``label`` column; a row whose
        condition holds is quarantined with the reason (a VARCHAR expression a person understands).

        ``classes_known``: whether ``dataset_classes`` holds the dataset's classes yet.
        """

    @abstractmethod
    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """Review: the Label Studio labeling config (XML ``<View>``) of a review task.

        ``item`` / ``partner``: the XML tags showing the example and its near-duplicate partner
        (built by the review stage per modality); ``classes``: the dataset's classes in order;
        ``from_name`` / ``to_name``: the names the answer control and the example tag take (the
        pull stage reads answers by ``from_name``); ``discard``: the answer meaning "not a valid
        example"; ``partner_prefix``: the task data fields' prefix of the partner.
        """

    @abstractmethod
    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """Review: the Label Studio ``result`` (a list of regions) that answers with ``label``: the
        model's suggestion pre-filled as a task's prediction, and a simulated reviewer's answer."""

    @abstractmethod
    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """Pull: the label an annotation ``result`` gives (in the spelling :meth:`label_sql` stores, or
        the review stage's discard answer), or None when the reviewer answered nothing. Malformed
        regions are ignored, never raised on: the result comes from the server."""


TASKS: Registry[type[Task]] = Registry("task", "data_engine.tasks", name_attr="name", base=Task)
