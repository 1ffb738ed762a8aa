"""Named entities in text: a set of character spans per text (``[dataset] task = "ner"``).

A label is the set of entity spans of one text version, stored as canonical JSON
(:mod:`data_engine.tasks.spans`): ``[{"start":0,"end":5,"label":"PER"}]``; ``[]`` is "labeled: no
entities", an empty cell unlabeled. The entity types are ``[dataset] classes`` or the types the
first labeled batch uses. In files a label is a JSON array of ``{"start", "end", "label"}`` (the
``[dataset] label`` column of a JSONL row, usually ``spans``); a CoNLL/BIO token file is read into
the same shape (:mod:`data_engine.ingest.conll`). A row whose spans are malformed, cross the text's
bounds, are empty, overlap, or name a type that is not one of the classes is quarantined with the
reason: a span set is one label, so the text is not stored with part of it silently dropped.

Each stage's NER maths lives in a small module beside this one: characters ⇄ tokens and the
stored prediction layout (:mod:`~data_engine.tasks.tokens`), the baseline tagger
(:mod:`~data_engine.tasks.ner_model`), cleanlab's token-classification issues
(:mod:`~data_engine.tasks.ner_issues`) and entity-level metrics with the paired bootstrap
(:mod:`~data_engine.tasks.ner_metrics`), the review side
(:mod:`~data_engine.tasks.ner_review`). A reviewer marks spans with Label Studio's ``<Labels>`` on
``<Text>``, the model's spans pre-marked as a prediction and the suspect tokens named.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_engine.store.values import normalized_sql
from data_engine.tasks import ner_review
from data_engine.tasks import spans as sp
from data_engine.tasks.base import TASKS, Task
from data_engine.tasks.ner_review import DISCARD, DISCARD_SUFFIX
from data_engine.tasks.setlabels import ExactMatchShare, discard_majority, mean_jaccard

if TYPE_CHECKING:
    from pathlib import Path

    import duckdb
    import numpy as np
    import pandas as pd

    from data_engine.compute.backend import Backend
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks.base import LabelIssues
    from data_engine.tasks.oof import OOFResult
    from data_engine.tasks.paired import PairedDiff


def _spans_sql(label: str) -> str:
    return f"CASE WHEN {sp.is_span_array_sql(label)} THEN from_json({label}, '{sp.SQL_STRUCT}') END"


@TASKS.register
class NER(ExactMatchShare, Task):
    """Entity spans per text (``[dataset] task = "ner"``)."""

    name = "ner"
    # The column checks read which entity types a text carries: a column that gives that away is a leak.
    column_labels = "tags"
    tag_noun = "entity type"
    count_noun = "entities"
    # Only the label check reads per-token predictions; near-duplicates and outliers read the embedding.
    detectors = frozenset({"label", "near_duplicate", "outlier"})
    default_metric = "f1"
    baseline_kind = "empty"  # a first model must beat finding no entity (tasks.baseline)
    # The budget split's figure: exact match (:meth:`oof_share`); no model stores it (f1 is per entity).
    share_points = "exact-match points"
    share_metric = None
    own_model = "tagger"  # ner_model's TokenTagger: the members classify whole texts
    reviews_past_flags = True  # cleanlab's token flags miss a whole entity of the wrong type: see Task.reviews_past_flags

    @property
    def _text_column(self) -> str | None:
        return self.ds.text_column if self.ds is not None else None

    # -- ingest -------------------------------------------------------------------------------

    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """The configured entity types, or the types this batch's spans use (at least two)."""
        from data_engine.store.schema import fix_classes

        return fix_classes(con, ds, batch_id, label_present, tags_sql=self.types_sql)

    def cell_classes_sql(self, cell: str) -> str:
        """The entity types of a raw label cell (:meth:`types_sql`)."""
        return self.types_sql(cell)

    def types_sql(self, cell: str) -> str:
        """SQL: the ``VARCHAR[]`` of entity types of a raw label cell (NULL when malformed)."""
        label = self.label_sql(cell, plain=False)
        return f"list_transform({_spans_sql(label)}, lambda s: s.label)"

    def label_sql(self, cell: str, plain: bool) -> str:
        """The canonical span set of a cell holding a JSON array of spans; a malformed cell is kept
        as written (for :meth:`label_reasons`); NULL for an empty cell."""
        c = cell if plain else normalized_sql(cell)
        return (f"CASE WHEN nullif({c}, '') IS NULL THEN NULL WHEN {sp.is_span_array_sql(c)} "
                f"THEN {sp.canonical_sql(c)} ELSE {c} END")

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """Malformed spans; a span outside its text or empty; two spans overlapping; an unknown type.
        The text column is read from the dataset's config (its length bounds the spans)."""
        from data_engine.store.schema import quote_ident

        spans = _spans_sql(label)
        reasons = [(
            f"{label} IS NOT NULL AND NOT ({sp.is_span_array_sql(label)})",
            f"'label ' || left({label}, 60) || ' is not a list of spans (a JSON array of "
            "{\"start\": int, \"end\": int, \"label\": type}, character offsets, end exclusive)'",
        )]
        if self._text_column:
            text = quote_ident(self._text_column)
            out = f"list_filter({spans}, lambda s: s.start < 0 OR s.end > length({text}) OR s.start >= s.end)"
            reasons.append((
                f"len({out}) > 0",
                f"'span [' || {out}[1].start || ', ' || {out}[1].end || ') ' || {out}[1].label || "
                f"' is outside the text (0-' || length({text}) || ') or empty'",
            ))
        over = f"list_filter(range(1, len({spans})), lambda i: {spans}[i + 1].start < {spans}[i].end)"
        reasons.append((
            f"len({over}) > 0",
            f"'span [' || {spans}[{over}[1] + 1].start || ', ' || {spans}[{over}[1] + 1].end || ') overlaps [' || "
            f"{spans}[{over}[1]].start || ', ' || {spans}[{over}[1]].end || ')'",
        ))
        if classes_known:
            types = f"list_transform({spans}, lambda s: s.label)"
            reasons.append((
                f"NOT list_has_all((SELECT list(class_label) FROM dataset_classes), {types})",
                f"'entity type ' || (SELECT left(string_agg(t, ', '), 80) FROM (SELECT unnest({types}) AS t) "
                "WHERE t NOT IN (SELECT class_label FROM dataset_classes)) || ' is not one of the types (' || "
                "(SELECT left(string_agg(class_label, ', ' ORDER BY position), 200) FROM dataset_classes) || ')'",
            ))
        return reasons

    # -- labels as arrays ---------------------------------------------------------------------

    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Stored span sets as an int64 matrix (n, 1 + 3 * MAX_SPANS) (:func:`data_engine.tasks.spans.encode`):
        the span count, then (start, end, type index in ``classes``) per span, zero-padded; the stages
        mark an unlabeled row with -1 everywhere. Raises ``ValueError`` naming the first bad label."""
        return sp.encode(labels, [str(c) for c in classes])

    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """The canonical span sets of the rows of ``y`` (n, 1 + 3 * MAX_SPANS)."""
        return sp.decode(y, [str(c) for c in classes])

    def carried_tags(self, y: np.ndarray, classes: Sequence[str], counts: bool = False) -> np.ndarray:
        """Which entity types each text's spans hold (n, K) 0/1 (``counts``: how many spans of each), from ``y``."""
        return sp.carried_types(y, len(classes), counts)

    def prediction_width(self, classes: Sequence[str]) -> int:
        """MAX_TOKENS token slots of (start, end, p_O, p per type)."""
        from data_engine.tasks import tokens as tk

        return tk.MAX_TOKENS * tk.slot_width(len(classes))

    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """``t<i>_start``, ``t<i>_end``, ``t<i>_O``, ``t<i>_<type>`` per token slot."""
        from data_engine.tasks import tokens as tk

        return tk.slot_columns([str(c) for c in classes])

    def prediction_problem(self, pred: np.ndarray) -> tuple[int, int | None, str] | None:
        """Every number finite, and each used token slot's probabilities a distribution (sum 1)."""
        from data_engine.tasks import tokens as tk

        return super().prediction_problem(pred) or tk.slot_problem(pred)

    def read_external(self, path: Path, classes: Sequence[str], examples: pd.DataFrame,
                      sources: Mapping[str, str]) -> pd.DataFrame | None:
        """A tagger's scored spans or per-token probabilities, one JSONL row per text
        (:func:`data_engine.tasks.span_external.external_token_rows`, the texts from ``examples``' text
        column); None for CSV / Parquet (the slot columns)."""
        from data_engine.tasks.span_external import external_token_rows

        column = self._text_column
        texts = ({} if column is None or column not in examples.columns else
                 {str(i): str(t) for i, t in zip(examples["example_id"], examples[column]) if t is not None})
        return external_token_rows(path, classes, texts)

    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """The built-in tagger (:class:`.ner_model.TokenTagger`; the user's trainer as :class:`.ner_trainer.CommandSpans`)
        under the first member's name: members classify whole texts, not tokens, and copies would repeat its fits."""
        from data_engine.tasks import ner_model, ner_trainer

        return {name: (ner_trainer.CommandSpans.from_member(member, text_column=self._text_column)
                       or ner_model.TokenTagger(text_column=self._text_column)) for name, member in list(members.items())[:1]}

    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Shuffled K-fold over texts (at most one fold per text; at least two texts)."""
        from data_engine.tasks.oof import shuffled_folds

        return shuffled_folds(len(y), folds, seed, "texts")

    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The members' packed predictions averaged with equal weights (every member is the same tagger)."""
        import numpy as np

        names = list(member_preds)
        return np.mean([member_preds[m] for m in names], axis=0), {m: 1.0 / len(names) for m in names}

    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Out-of-fold packed per-token predictions (n, width): each member fitted on the other folds'
        texts with the dataset's types (:func:`data_engine.tasks.ner_model.out_of_fold_tokens`)."""
        from data_engine.tasks.ner_model import out_of_fold_tokens

        fold_of, k, _ = self.fold_ids(y, classes, folds=folds, seed=seed)
        return out_of_fold_tokens(members, X, y, classes, fold_of, k, compute=compute, n_jobs=n_jobs)

    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """Packed per-token predictions (n, width) in ``classes`` order; a type the model does not know gets 0."""
        from data_engine.tasks.ner_model import aligned_predictions

        return aligned_predictions(model, X, classes)

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The span set of each token's most likely tag, scored by the least sure token's probability."""
        from data_engine.tasks.ner_issues import suggested_spans

        return suggested_spans(pred, [str(c) for c in classes])

    def example_correct(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> np.ndarray:
        """Whether each text's predicted span set (:meth:`best` of ``pred``, (n, width)) is its given one, (n,) bool."""
        import numpy as np

        predicted = self.best(np.asarray(pred), classes)[0] if len(pred) else []
        return np.array([g == p for g, p in zip(self.decode(y, classes), predicted)], dtype=bool)

    # -- mining -------------------------------------------------------------------------------

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """cleanlab's token issues per text, and spans cut inside a word if ``inputs`` holds the texts (:func:`.ner_issues.find_span_issues`)."""
        from data_engine.tasks.ner_issues import find_span_issues

        texts = None if inputs is None or self._text_column not in inputs else inputs[self._text_column].tolist()
        return find_span_issues(self.decode(y, classes), pred, [str(c) for c in classes], texts)

    def selection_uncertainty(self, pred: np.ndarray, method: str = "margin_sampling") -> np.ndarray:
        """Token predictions are not one distribution per text: every ``method`` ranks by the least
        sure token (:meth:`uncertainty`). Shape (n,)."""
        return self.uncertainty(pred)

    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """Per text: 1 - the least sure token's top-2 margin (0 for a text without tokens)."""
        import numpy as np

        from data_engine.tasks import tokens as tk

        pred = np.asarray(pred, dtype=float)
        if not len(pred):
            return np.array([])
        slots = pred.reshape(len(pred), tk.MAX_TOKENS, -1)
        probs = np.sort(slots[:, :, tk.SLOT_META:], axis=2)
        margin = probs[:, :, -1] - (probs[:, :, -2] if probs.shape[2] > 1 else 0.0)
        margin = np.where(slots[:, :, 0] >= 0, margin, 1.0)
        return np.clip(1.0 - margin.min(axis=1), 0.0, 1.0)

    # -- review -------------------------------------------------------------------------------

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """``<Labels>`` on the text (one label per type), a ``<Choices>`` for ``discard``, and header
        lines with the given spans, the model's and the suspect tokens (:func:`ner_review.labeling_config`)."""
        return ner_review.labeling_config(item, partner, classes, from_name=from_name, to_name=to_name,
                                          discard=discard, partner_prefix=partner_prefix)

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """One Label Studio text region per span (:func:`ner_review.prediction_result`)."""
        return ner_review.prediction_result(label, from_name=from_name, to_name=to_name)

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The marked spans as a stored span set, or the discard answer (:func:`ner_review.answer_label`)."""
        return ner_review.answer_label(result, from_name=from_name)

    def answer_problem(self, label: str, choices: Sequence[str]) -> str | None:
        """What is wrong with an answer, None if nothing (:func:`ner_review.answer_problem`)."""
        return ner_review.answer_problem(label, choices)

    def consensus(self, labels: Sequence[str]) -> str | None:
        """Span-level majority: the spans (exact start, end and type) more than half the answers mark;
        a discard answer counts as one answer with no spans, a majority of discards is the verdict,
        a tie of discards None. Strict majorities of valid span sets cannot overlap."""
        if not labels:
            return None
        decided, verdict = discard_majority(labels, DISCARD)
        if decided:
            return verdict
        votes = Counter(s for label in labels if label != DISCARD for s in set(sp.spans_of(label)))
        return sp.canonical(s for s, v in votes.items() if 2 * v > len(labels))

    def agreement(self, labels: Sequence[str], verdict: str) -> float:
        """The mean share of spans each answer shares with ``verdict`` (Jaccard of exact spans; 1 for
        two empty sets; a discard agrees only with a discard)."""
        return mean_jaccard(labels, verdict, sp.spans_of, DISCARD)

    def oracle_label(self, value: Any) -> str:
        """An oracle value (a JSON list of spans, or its text) in stored spelling."""
        try:
            return sp.canonical(sp.parse(value))
        except sp.NotASpanSet as exc:
            raise ValueError(str(exc)) from None

    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """The true spans with one entity dropped or retyped (:func:`ner_review.wrong_answer`)."""
        return ner_review.wrong_answer(truth, classes, rng)

    # -- ship ---------------------------------------------------------------------------------

    def _labels(self, pred: np.ndarray, classes: Sequence[str]) -> list[str]:
        import numpy as np

        pred = np.asarray(pred)
        return self.best(pred, classes)[0] if pred.ndim == 2 else [str(v) for v in pred]

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """Entity-level (exact span) micro ``f1``, ``precision``, ``recall`` and per-type figures
        (:func:`data_engine.tasks.ner_metrics.entity_metrics`); ``pred``: span sets (n,) or packed (n, width)."""
        from data_engine.tasks.ner_metrics import entity_metrics

        types = [str(c) for c in classes] or None
        return entity_metrics([str(v) for v in y_true], self._labels(pred, classes), types)

    def metric_names(self) -> tuple[str, ...]:
        """``f1``, ``precision``, ``recall``."""
        from data_engine.tasks.ner_metrics import METRICS

        return METRICS

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """A paired bootstrap over gold texts (:func:`data_engine.tasks.ner_metrics.paired_bootstrap`)."""
        self.check_metric(metric)
        from data_engine.tasks.ner_metrics import paired_bootstrap

        return paired_bootstrap([str(v) for v in y_true], [str(v) for v in cand_pred], [str(v) for v in champ_pred],
                                metric, alpha=alpha)

    def class_recall(self, y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
        """Each gold type's entity recall (exact span) and its support."""
        from data_engine.tasks.ner_metrics import entity_metrics

        m = entity_metrics([str(v) for v in y_true], [str(v) for v in pred])
        return {t: (m["per_type_recall"][t], n) for t, n in m["per_type_support"].items() if n > 0}

    def predict_fields(self) -> dict[str, Any] | None:
        """``/predict``: ``spans`` (a list of span objects with a ``score``)."""
        return {"spans": list[dict[str, Any]]}

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``{"spans": [{"start", "end", "label", "score"}]}``: each span's score is its least sure
        token's probability of the span's type (6 decimals)."""
        from data_engine.tasks import tokens as tk

        types = [str(c) for c in classes]
        off, probs = tk.unpack(pred_row, len(types))
        tags = probs.argmax(axis=1) if len(probs) else []
        out = []
        for s in tk.tags_to_spans(tags, off, types):
            inside = (off[:, 0] >= s.start) & (off[:, 1] <= s.end)
            score = float(probs[inside, types.index(s.label) + 1].min())
            out.append({"start": s.start, "end": s.end, "label": s.label, "score": round(score, 6)})
        return {"spans": out}

    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predicted_spans`` (the stored span set) and ``predicted_score`` (the least sure token's probability)."""
        import numpy as np

        labels, scores = self.best(pred, classes)
        return {"predicted_spans": np.asarray(labels, dtype=object), "predicted_score": scores}

    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``{"f1", "precision", "recall", "per_type_f1", "n"}``."""
        return {"f1": figures.get("f1"), "precision": figures.get("precision"), "recall": figures.get("recall"),
                "per_type_f1": figures.get("per_type_f1", {}), "n": int(n)}

    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """Entity F1, precision and recall, then each type's F1 and support."""
        support = figures.get("per_type_support", {})
        return (f"entity F1 {figures['f1']:.4f}, precision {figures['precision']:.4f}, recall {figures['recall']:.4f}",
                [f"  F1 {t}: {f:.4f} (of {support.get(t, 0)})" for t, f in figures.get("per_type_f1", {}).items()])


__all__ = ["DISCARD", "DISCARD_SUFFIX", "NER"]
