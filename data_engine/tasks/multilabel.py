"""Multi-label classification: a set of tags per example (``[dataset] task = "multilabel"``).

A label is a set of tags from ``[dataset] classes`` (or the tags the first labeled batch uses),
stored as its canonical JSON array (:mod:`data_engine.tasks.tagsets`): ``["billing","urgent"]``;
``[]`` is "labeled with no tags", an empty cell is unlabeled. In files a label is a JSON array
(JSONL, a Parquet list, a CSV cell ``["a","b"]``) or, in a CSV cell, tags split by
``[dataset] label_separator`` (``a|b``). A tag that is not one of the classes quarantines its row
with the tag named; so do a malformed array and an empty tag.

Each stage's multi-label maths lives in a small module beside this one: out-of-fold per-tag
probabilities (:mod:`~data_engine.tasks.multilabel_oof`), cleanlab's multi-label label issues
(:mod:`~data_engine.tasks.multilabel_issues`), metrics and the paired gate test
(:mod:`~data_engine.tasks.multilabel_metrics`). A reviewer ticks tags in a multiple-choice
``<Choices choice="multiple">`` with the model's tag set pre-filled and the suspect tags named.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_engine.store.values import normalized_sql
from data_engine.tasks import tagsets
from data_engine.tasks.base import TASKS, Task
from data_engine.tasks.setlabels import ExactMatchShare, discard_majority, mean_jaccard

if TYPE_CHECKING:  # numpy, pandas and DuckDB load when a method runs: ingest's start-up stays light
    import duckdb
    import numpy as np
    import pandas as pd

    from data_engine.compute.backend import Backend
    from data_engine.store.config import DatasetConfig
    from data_engine.tasks.base import LabelIssues
    from data_engine.tasks.oof import OOFResult
    from data_engine.tasks.paired import PairedDiff

# The JSON types of an array element that is a tag (numbers and booleans included: a JSONL file
# may write tags 1, 2 or true; they are read as their text, "1", "2", "true").
_SCALAR_TYPES = "('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN')"
_TEXT_TYPE = "('VARCHAR')"
THRESHOLD = tagsets.THRESHOLD


def _array_of(expr: str, element_types: str) -> str:
    """SQL: ``expr`` is valid JSON, an array, and each element's JSON type is in ``element_types``.
    Nested CASE, not AND: DuckDB may evaluate both sides of AND, and json_type fails on invalid JSON."""
    return (f"CASE WHEN NOT json_valid({expr}) THEN false WHEN json_type({expr}) <> 'ARRAY' THEN false "
            f"ELSE len(list_filter(json_extract({expr}, '$[*]'), lambda x: json_type(x) NOT IN {element_types})) = 0 END")


def _as_list(expr: str) -> str:
    """SQL: the stored tag set ``expr`` (a JSON array of text) as ``VARCHAR[]``."""
    return f"from_json({expr}, '[\"VARCHAR\"]')"


@TASKS.register
class Multilabel(ExactMatchShare, Task):
    """A set of tags per example (``[dataset] task = "multilabel"``)."""

    name = "multilabel"
    has_classes = True
    column_labels = "tags"
    # Every detector applies: label issues per tag set, and the feature-space detectors as for classes.
    detectors = None
    estimator_kind = "classifier"
    default_metric = "micro_f1"
    baseline_kind = "tag_majority"  # a first model must beat each tag's training majority, usually no tag (tasks.baseline)
    # Flags are per tag, one-vs-rest: spare reviews go down the ranking (Task.reviews_past_flags).
    reviews_past_flags = True
    # The budget split's figure: exact match (:meth:`oof_share`), stored per model as ``exact_match``.
    share_points = "exact-match points"
    share_metric = "exact_match"

    def __init__(self, ds: DatasetConfig | None = None) -> None:
        super().__init__(ds)
        self.separator = ds.label_separator if ds is not None else tagsets.DEFAULT_SEPARATOR

    # -- ingest -------------------------------------------------------------------------------

    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """The configured tags, or the tags this batch's labels use, in natural order (at least two)."""
        from data_engine.store.schema import fix_classes

        return fix_classes(con, ds, batch_id, label_present, tags_sql=self.tags_sql)

    def label_sql(self, cell: str, plain: bool) -> str:
        """The canonical JSON array of the cell's tags; NULL for an empty cell (unlabeled).

        A cell starting with ``[`` is read as a JSON array (its scalars become tag text); any other
        cell is split by the separator. A cell that starts with ``[`` but is not an array of
        scalars is kept as written, for :meth:`label_reasons` to quarantine with the reason.
        """
        c = cell if plain else normalized_sql(cell)
        sep = "'" + self.separator.replace("'", "''") + "'"
        from_json = tagsets.canonical_sql(f"json_extract_string({c}, '$[*]')")
        return (f"CASE WHEN nullif({c}, '') IS NULL THEN NULL "
                f"WHEN starts_with({c}, '[') THEN CASE WHEN {_array_of(c, _SCALAR_TYPES)} THEN {from_json} ELSE {c} END "
                f"ELSE {tagsets.canonical_sql(f'string_split({c}, {sep})')} END")

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """A malformed tag list, an empty tag, and (once the classes are known) a tag outside them."""
        ok = _array_of(label, _TEXT_TYPE)
        tags = f"CASE WHEN {ok} THEN {_as_list(label)} END"
        reasons = [
            (f"{label} IS NOT NULL AND NOT ({ok})",
             f"'label ' || left({label}, 40) || ' is not a list of tags (a JSON array of text such as [\"a\",\"b\"], "
             f"or tags separated by {self.separator.replace(chr(39), chr(39) * 2)})'"),
            (f"list_contains({tags}, '')",
             f"'label ' || left({label}, 40) || ' has an empty tag (two separators in a row, or one at an end)'"),
        ]
        if classes_known:
            reasons.append((
                # The empty tag has its own reason above.
                f"NOT list_has_all((SELECT list(class_label) FROM dataset_classes), list_filter({tags}, lambda t: t <> ''))",
                f"'tag ' || (SELECT left(string_agg(t, ', '), 80) FROM (SELECT unnest({tags}) AS t) "
                "WHERE t <> '' AND t NOT IN (SELECT class_label FROM dataset_classes)) || ' is not one of the classes (' || "
                "(SELECT left(string_agg(class_label, ', ' ORDER BY position), 200) FROM dataset_classes) || ')'",
            ))
        return reasons

    def cell_classes_sql(self, cell: str) -> str:
        """The tags of a raw label cell (:meth:`tags_sql`)."""
        return self.tags_sql(cell)

    def tags_sql(self, cell: str) -> str:
        """SQL: the ``VARCHAR[]`` of tags of a raw label cell (NULL when unlabeled or malformed)."""
        label = self.label_sql(cell, plain=False)
        return f"CASE WHEN {_array_of(label, _TEXT_TYPE)} THEN {_as_list(label)} END"

    # -- labels as arrays ---------------------------------------------------------------------

    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Stored labels as a 0/1 matrix (n, K) (:func:`data_engine.tasks.tagsets.encode`)."""
        return tagsets.encode(labels, classes)

    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """A 0/1 matrix (n, K) as stored labels."""
        return tagsets.decode(y, classes)

    def carried_tags(self, y: np.ndarray, classes: Sequence[str], counts: bool = False) -> np.ndarray:
        """The tag matrix itself (n, K) 0/1 (a tag is carried once: ``counts`` changes nothing)."""
        import numpy as np

        return np.asarray(y, dtype=int)

    def prediction_width(self, classes: Sequence[str]) -> int:
        """K independent per-tag probabilities."""
        return len(classes)

    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """One probability per tag, named by the tag."""
        return [str(c) for c in classes]

    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """Each classifier as a calibrated one-vs-rest :class:`~data_engine.tasks.multilabel_oof.TagwiseClassifier`
        (the user's trainer as :class:`~data_engine.tasks.multilabel_trainer.CommandTagger`: it takes the tag sets)."""
        from data_engine.tasks.multilabel_oof import one_vs_rest

        return {name: one_vs_rest(member) for name, member in members.items()}

    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Shuffled K-fold (:func:`data_engine.tasks.multilabel_oof.assign_tag_folds`)."""
        from data_engine.tasks.multilabel_oof import assign_tag_folds

        return assign_tag_folds(y, folds=folds, seed=seed)

    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """Bernoulli-likelihood mixture weights (:func:`data_engine.tasks.multilabel_oof.mix_tag_probabilities`)."""
        from data_engine.tasks.multilabel_oof import mix_tag_probabilities

        return mix_tag_probabilities(member_preds, y)

    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Out-of-fold per-tag probabilities (n, K), one-vs-rest over ``members``, mixed
        (:func:`data_engine.tasks.multilabel_oof.out_of_fold_tag_probabilities`)."""
        from data_engine.tasks.multilabel_oof import out_of_fold_tag_probabilities

        return out_of_fold_tag_probabilities(members, X, y, folds=folds, seed=seed, n_jobs=n_jobs, compute=compute)

    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """Per-tag probabilities (n, K) in ``classes`` order; a tag the model does not know gets 0."""
        import numpy as np

        raw = np.asarray(model.predict_proba(X), dtype=float)
        learned = [str(c) for c in getattr(model, "classes_", range(raw.shape[1]))]
        if learned == [str(k) for k in range(raw.shape[1])] and len(learned) == len(classes):
            return raw
        out = np.zeros((len(X), len(classes)), dtype=float)
        index = {c: j for j, c in enumerate(learned)}
        for k, c in enumerate(classes):
            if str(c) in index:
                out[:, k] = raw[:, index[str(c)]]
        return out

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """The tags at probability >= 0.5 and the probability of that exact set (product of max(p, 1 - p))."""
        from data_engine.tasks.multilabel_issues import suggested_sets

        return suggested_sets(pred, classes)

    # -- mining -------------------------------------------------------------------------------

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """cleanlab's multi-label label issues, with the suspect tags named
        (:func:`data_engine.tasks.multilabel_issues.find_tag_issues`)."""
        from data_engine.tasks.multilabel_issues import find_tag_issues

        return find_tag_issues(y, pred, classes)

    def example_correct(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> np.ndarray:
        """Exact match: every tag of the example predicted right (probability >= 0.5 for its tags,
        below for the others), shape (n,) bool. ``y``: (n, K) 0/1; ``pred``: (n, K)."""
        import numpy as np

        pred = np.asarray(pred, dtype=float)
        if not len(pred):
            return np.zeros(0, dtype=bool)
        return np.isfinite(pred).all(axis=1) & ((pred >= 0.5) == (np.asarray(y) > 0)).all(axis=1)

    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """Per example: the least sure tag's 1 - |2p - 1| (1 at p = 0.5, 0 at p in {0, 1})."""
        import numpy as np

        pred = np.asarray(pred, dtype=float)
        return (1.0 - np.abs(2.0 * pred - 1.0)).max(axis=1, initial=0.0) if len(pred) else np.array([])

    def selection_uncertainty(self, pred: np.ndarray, method: str = "margin_sampling") -> np.ndarray:
        """The mean over tags of each tag's own uncertainty: every tag is a two-class distribution
        (p, 1 - p) scored by scikit-activeml's ``uncertainty_scores`` with ``method``. The mean, not
        the least sure tag (:meth:`uncertainty`), so an example unsure about several tags ranks
        above one unsure about one. ``pred``: (n, tags) per-tag probabilities; shape (n,)."""
        import numpy as np
        from skactiveml.pool import uncertainty_scores

        pred = np.clip(np.nan_to_num(np.asarray(pred, dtype=np.float64), nan=0.5), 0.0, 1.0)
        if not pred.size:
            return np.zeros(len(pred))
        flat = pred.reshape(-1)
        per_tag = uncertainty_scores(np.stack([flat, 1.0 - flat], axis=1), method=method).reshape(pred.shape)
        return np.nan_to_num(per_tag, nan=0.0).mean(axis=1)

    # -- review -------------------------------------------------------------------------------

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """Check boxes (``<Choices choice="multiple">``): the tags, then ``discard``; the given tags,
        the model's suggested set and the suspect tags (task field ``label_note``) in header lines."""
        from data_engine.tasks.review_views import choices_view

        from xml.sax.saxutils import quoteattr  # here: it loads urllib, http, ssl (30 ms)
        how = quoteattr(f"Tick every tag that applies (none ticked: no tags), or '{discard}'.")
        return choices_view(
            item, partner, [*classes, discard], from_name=from_name, to_name=to_name, partner_prefix=partner_prefix,
            mode='choice="multiple" showInLine="true"', below=f'\n  <Header value={how} size="6"/>',
            headers=['<Header value="Given tags: $given_label  |  model suggests: $suggested_label ($suggested_score)" size="4"/>',
                     '<Header value="Suspect tags: $label_note" size="5"/>',
                     '<Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale)" size="5"/>'])

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """The tags of the stored tag set ``label`` ticked (no region for ``[]``); any other text (the
        discard answer) as one choice."""
        try:
            picked = tagsets.tags_of(label)
        except ValueError:
            picked = [label]
        if not isinstance(picked, list):
            picked = [label]
        if not picked:
            return []  # no tags: nothing ticked (a region with no choice is not one Label Studio makes)
        return [{"from_name": from_name, "to_name": to_name, "type": "choices", "value": {"choices": picked}}]

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The ticked tags as a stored tag set; a submitted annotation with nothing ticked is ``[]``
        (no tags); None when ``result`` is not a list. A ticked choice that is not a tag (the review
        stage's discard answer) is returned alone: it overrides any tags ticked beside it."""
        if not isinstance(result, list):
            return None
        picked: list[str] = []
        for region in result:
            if not isinstance(region, Mapping) or region.get("from_name") != from_name or region.get("type") != "choices":
                continue
            value = region.get("value")
            chosen = value.get("choices") if isinstance(value, Mapping) else None
            if isinstance(chosen, list):
                picked += [c for c in chosen if isinstance(c, str)]
        return DISCARD if DISCARD in picked else tagsets.canonical(picked)

    def answer_problem(self, label: str, choices: Sequence[str]) -> str | None:
        """An answer is the discard answer or a tag set of the dataset's tags (``choices``: the tags
        and the discard answer); else the first unknown tag is named."""
        if label == DISCARD:
            return None
        try:
            tags = tagsets.tags_of(label)
        except ValueError:
            return f"{label[:40]!r} is not a tag set"
        unknown = [t for t in tags if t not in choices or t == DISCARD]
        return f"tag {unknown[0][:40]!r} is not one of the tags" if unknown else None

    def consensus(self, labels: Sequence[str]) -> str | None:
        """Per-tag majority of several annotators' tag sets (:func:`data_engine.tasks.tagsets.consensus`);
        a discard answer counts as one more answer: a majority of discards is the verdict, a tie None."""
        if not labels:
            return None
        decided, verdict = discard_majority(labels, DISCARD)
        if decided:
            return verdict
        discards = sum(1 for label in labels if label == DISCARD)
        return tagsets.consensus([label for label in labels if label != DISCARD] + ["[]"] * discards)

    def agreement(self, labels: Sequence[str], verdict: str) -> float:
        """The mean share of tags on which each answer agrees with ``verdict`` (Jaccard similarity
        of the two tag sets; 1 for two empty sets; a discard agrees only with a discard)."""
        return mean_jaccard(labels, verdict, tagsets.tags_of, DISCARD)

    def oracle_label(self, value: Any) -> str:
        """An oracle value (a JSON list, a JSON array text or ``a|b``) in stored spelling."""
        try:
            return tagsets.canonical(tagsets.parse(value, self.separator))
        except tagsets.NotATagSet as exc:
            raise ValueError(str(exc)) from None

    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """The true set with one tag flipped (added or removed), uniformly."""
        tags = set(tagsets.tags_of(truth))
        tags ^= {rng.choice(list(classes))}
        return tagsets.canonical(tags)

    # -- ship ---------------------------------------------------------------------------------

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """micro/macro F1, exact match, per-tag recall (:func:`data_engine.tasks.multilabel_metrics.tag_metrics`)."""
        from data_engine.tasks.multilabel_metrics import tag_metrics

        return tag_metrics(y_true, pred, classes)

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """Exact match (accuracy): McNemar's exact test; the F1s: a paired bootstrap over examples
        (:func:`data_engine.tasks.multilabel_metrics.paired_bootstrap`)."""
        self.check_metric(metric)
        from data_engine.tasks.multilabel_metrics import paired_bootstrap

        return paired_bootstrap(y_true, cand_pred, champ_pred, metric, alpha=alpha)

    def class_recall(self, y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
        """Each gold tag's recall (tags the gold sets carry) and its support, from stored tag sets (n,)."""
        from data_engine.tasks.multilabel_metrics import as_matrix

        tags = sorted({t for label in y_true for t in tagsets.tags_of(str(label))})
        if not tags:
            return {}
        # A predicted tag outside the gold tags cannot raise a gold tag's recall: it is left out.
        t = as_matrix(y_true, tags)
        p = tagsets.encode([tagsets.canonical(set(tagsets.tags_of(str(v))) & set(tags)) for v in pred], tags)
        support = t.sum(axis=0)
        hits = (t & p).sum(axis=0)
        return {tag: (float(hits[k] / support[k]), int(support[k])) for k, tag in enumerate(tags)}

    def predict_fields(self) -> dict[str, Any] | None:
        """``/predict``: ``tags`` (a list of text) and ``probabilities`` (tag -> p)."""
        return {"tags": list[str], "probabilities": dict[str, float]}

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``{"tags": [...], "probabilities": {tag: p}}``: the tags at probability >= 0.5 (6 decimals)."""
        import numpy as np

        probs = dict(zip((str(c) for c in classes), np.round(np.asarray(pred_row, dtype=float), 6).tolist()))
        return {"tags": json.loads(tagsets.canonical(c for c, p in probs.items() if p >= THRESHOLD)),
                "probabilities": probs}

    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predicted_tags`` (the stored tag set), ``predicted_score`` (its probability) and one
        ``p_<tag>`` column per tag."""
        import numpy as np

        labels, scores = self.best(pred, classes)
        out: dict[str, np.ndarray] = {"predicted_tags": np.asarray(labels, dtype=object), "predicted_score": scores}
        for j, c in enumerate(classes):
            out[f"p_{c}"] = pred[:, j]
        return out

    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``{"micro_f1", "macro_f1", "exact_match", "per_tag_recall", "n"}`` (the recall of each gold tag,
        :meth:`class_recall`, kept by the evaluation as its per-class recall)."""
        return {"micro_f1": figures.get("micro_f1"), "macro_f1": figures.get("macro_f1"),
                "exact_match": figures.get("exact_match"), "per_tag_recall": figures.get("per_class_recall", {}),
                "n": int(n)}

    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """micro-F1, macro-F1 and exact match, then each tag's recall."""
        return (f"micro-F1 {figures['micro_f1']:.4f}, macro-F1 {figures['macro_f1']:.4f}, "
                f"exact match {figures['exact_match']:.4f}",
                [f"  recall {tag}: {recall:.4f} (of {figures.get('per_class_support', {}).get(tag, 0)})"
                 for tag, recall in figures.get("per_class_recall", {}).items()])


# The review stage's "not a valid example" answer (data_engine.review.labelstudio.labeling.DISCARD_CHOICE,
# which sits above this layer; a test keeps the two equal).
DISCARD = "not a valid example"
