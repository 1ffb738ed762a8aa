"""Object detection on image files: a set of boxes per image (``[dataset] task = "detection"``).

A label is the set of boxes of one image version, stored as canonical JSON in pixels
(:mod:`data_engine.tasks.boxes`): ``[{"label":"disc","x":3,"y":4,"w":20,"h":21}]``; ``[]`` is
"labeled: nothing to detect", an empty cell unlabeled. The dataset is one of image files
(``modality = "image"``, ``image_column``); the classes are ``[dataset] classes`` or those the first
labeled batch's boxes name. At ingest a malformed label quarantines its row; a box outside its image
(measured by Pillow), of no size, of an unknown class or given twice is quarantined alone with the
reason, the image kept with its other boxes (:mod:`~data_engine.tasks.box_ingest`).

Each stage's maths lives beside this module: the fixed-width arrays (:mod:`~data_engine.tasks.box_pack`),
the baseline detector (:mod:`~data_engine.tasks.box_model`, behind :mod:`~data_engine.tasks.box_estimator`),
cleanlab's object-detection issues (:mod:`~data_engine.tasks.box_issues`), mAP@0.5 with the paired
bootstrap over images (:mod:`~data_engine.tasks.box_metrics`) and Label Studio's rectangles in percent
(:mod:`~data_engine.tasks.box_regions`). A reviewer fixes the box set with ``<RectangleLabels>``, the
model's boxes pre-drawn as a prediction and the suspect boxes named.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from data_engine.tasks.base import TASKS, Task
from data_engine.tasks.boxes import Box, NotABoxSet, boxes_of, canonical, parse, same_object, same_objects
from data_engine.tasks.ner import DISCARD, DISCARD_SUFFIX
from data_engine.tasks.review_views import regions_view
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

# A predicted box at or above this score is part of the model's box set (its suggestion, ``best``).
SCORE_THRESHOLD = 0.5
# Boxes of one class overlapping at least this much are the same object (reviewers' answers, correctness).
SAME_OBJECT_IOU = 0.5
# The task data fields holding the image's size in pixels (set by the review stage for image files).
WIDTH_FIELD, HEIGHT_FIELD = "image_width", "image_height"


def _bp() -> Any:
    """The packing of box predictions (:mod:`data_engine.tasks.box_pack`), imported when first used:
    it loads numpy, which `ingest` of any task must start without."""
    from data_engine.tasks import box_pack

    return box_pack


@TASKS.register
class Detection(ExactMatchShare, Task):
    """Boxes per image file (``[dataset] task = "detection"``)."""

    name = "detection"
    has_classes = True
    # The column checks read which classes an image's boxes hold: a column that gives that away is a leak.
    column_labels = "tags"
    tag_noun = "box class"
    count_noun = "boxes"
    # The label check reads the scored boxes; near-duplicates and outliers work on the image embedding.
    detectors = frozenset({"label", "near_duplicate", "outlier"})
    estimator_kind = "classifier"
    # The budget split's figure: exact match (:meth:`oof_share`); no model stores it (map50 ranks boxes).
    share_points = "exact-match points"
    share_metric = None
    default_metric = "map50"
    baseline_kind = "empty"  # a first model must beat finding no box (tasks.baseline)
    own_model = "box-detector"  # box_model's BoxDetector: the members classify whole images
    reviews_past_flags = True  # cleanlab's box flags miss shifted boxes: spare reviews go down the ranking

    @property
    def _image_column(self) -> str | None:
        return self.ds.image_column if self.ds is not None else None

    # -- ingest -------------------------------------------------------------------------------

    def record_classes(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig, batch_id: str,
                       label_present: bool) -> list[str]:
        """The configured classes, or the classes this batch's boxes name (at least two)."""
        from data_engine.store.schema import fix_classes

        return fix_classes(con, ds, batch_id, label_present, tags_sql=self.cell_classes_sql)

    def cell_classes_sql(self, cell: str) -> str:
        """The classes a raw box-set cell names (:func:`data_engine.tasks.box_ingest.classes_sql`)."""
        from data_engine.tasks.box_ingest import classes_sql

        return classes_sql(cell)

    def label_sql(self, cell: str, plain: bool) -> str:
        """The cell as written (NULL when empty): the canonical spelling is written once the images are
        read (:meth:`check_image_labels`), since a box's validity depends on its image's size."""
        from data_engine.store.values import normalized_sql

        c = cell if plain else normalized_sql(cell)
        return f"CASE WHEN nullif({c}, '') IS NULL THEN NULL ELSE {c} END"

    def label_reasons(self, label: str, classes_known: bool) -> list[tuple[str, str]]:
        """A label that is not a JSON array of boxes with a class and four numbers each."""
        from data_engine.tasks.box_ingest import label_reasons

        return label_reasons(label)

    def check_image_labels(self, con: duckdb.DuckDBPyConnection, ds: DatasetConfig,
                           batch_id: str) -> tuple[int, list[str]]:
        """Each box against its image's size and the classes (:func:`data_engine.tasks.box_ingest.check_image_boxes`)."""
        from data_engine.tasks.box_ingest import check_image_boxes

        return check_image_boxes(con, ds, batch_id)

    # -- labels as arrays ---------------------------------------------------------------------

    def encode(self, labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
        """Stored box sets as a float matrix (n, 1 + 5 * MAX_BOXES) (:func:`data_engine.tasks.box_pack.encode`)."""
        return _bp().encode(labels, [str(c) for c in classes])

    def decode(self, y: np.ndarray, classes: Sequence[str]) -> list[str]:
        """The canonical box sets of the rows of ``y``."""
        return _bp().decode(y, [str(c) for c in classes])

    def carried_tags(self, y: np.ndarray, classes: Sequence[str], counts: bool = False) -> np.ndarray:
        """Which classes each image's boxes hold (n, K) 0/1 (``counts``: how many boxes of each), from ``y``."""
        return _bp().carried_classes(y, len(classes), counts)

    def prediction_width(self, classes: Sequence[str]) -> int:
        """MAX_BOXES slots of (x, y, w, h, class index, score)."""
        return _bp().MAX_BOXES * _bp().SLOT

    def prediction_columns(self, classes: Sequence[str]) -> list[str]:
        """``b<i>_x``, ``b<i>_y``, ``b<i>_w``, ``b<i>_h``, ``b<i>_class``, ``b<i>_score`` per slot."""
        return _bp().slot_columns()

    def prediction_problem(self, pred: np.ndarray) -> tuple[int, int | None, str] | None:
        """Every number finite, each used slot a box of positive size, a class index and a score in [0, 1]."""
        found = super().prediction_problem(pred)
        if found is not None:
            return found
        n_classes = int(pred[:, 4::_bp().SLOT].max()) + 1 if len(pred) else 0
        return _bp().slot_problem(pred, n_classes)

    def read_external(self, path: Path, classes: Sequence[str], examples: pd.DataFrame,
                      sources: Mapping[str, str]) -> pd.DataFrame | None:
        """A detector's boxes, one JSONL row per image (:func:`data_engine.tasks.box_external.external_box_rows`);
        None for CSV / Parquet (the slot columns)."""
        from data_engine.tasks.box_external import external_box_rows

        return external_box_rows(path, classes, sources)

    def members_for(self, members: Mapping[str, Any]) -> dict[str, Any]:
        """The baseline detector (:class:`~data_engine.tasks.box_estimator.BoxDetector`) under the first
        member's name: the modality's members classify whole images, not boxes; the user's trainer as
        :class:`~data_engine.tasks.box_trainer.CommandBoxes`."""
        from data_engine.tasks.box_estimator import BoxDetector
        from data_engine.tasks.box_trainer import CommandBoxes

        return {name: (CommandBoxes.from_member(member) or BoxDetector(image_column=self._image_column))
                for name, member in list(members.items())[:1]}

    def fold_ids(self, y: np.ndarray, classes: Sequence[str], *, folds: int,
                 seed: int) -> tuple[np.ndarray, int, tuple[int, ...]]:
        """Shuffled K-fold over images (at least two images)."""
        from data_engine.tasks.oof import shuffled_folds

        return shuffled_folds(len(y), folds, seed, "images")

    def mix(self, member_preds: Mapping[str, np.ndarray], y: np.ndarray) -> tuple[np.ndarray, dict[str, float]]:
        """The first member's predictions: boxes of several detectors do not average slot by slot."""
        first = next(iter(member_preds))
        return member_preds[first], {m: float(m == first) for m in member_preds}

    def out_of_fold(self, members: Mapping[str, Any], X: pd.DataFrame, y: np.ndarray, classes: Sequence[str], *,
                    folds: int = 5, seed: int = 0, n_jobs: int = 1, compute: Backend | None = None) -> OOFResult:
        """Out-of-fold prediction rows (n, width): each image predicted by a detector fitted on the other
        folds' images (:func:`data_engine.tasks.oof.out_of_fold_packed`)."""
        from data_engine.tasks.oof import out_of_fold_packed

        fold_of, k, _ = self.fold_ids(y, classes, folds=folds, seed=seed)
        return out_of_fold_packed(members, X, y, [str(c) for c in classes], fold_of, k,
                                  width=self.prediction_width(classes), compute=compute, n_jobs=n_jobs, noun="images")

    def predict(self, model: Any, X: pd.DataFrame, classes: Sequence[str]) -> np.ndarray:
        """Prediction rows (n, width) in ``classes`` order (:func:`data_engine.tasks.box_estimator.aligned_boxes`)."""
        from data_engine.tasks.box_estimator import aligned_boxes

        return aligned_boxes(model, X, classes)

    def best(self, pred: np.ndarray, classes: Sequence[str]) -> tuple[list[str], np.ndarray]:
        """Each image's box set of the boxes scored at least SCORE_THRESHOLD, and how sure the model is of
        it: the least sure kept box's score, or 1 - the best score when no box is kept."""
        import numpy as np

        labels, scores = [], []
        for row in np.asarray(pred, dtype=float):
            boxes = _bp().unpack(row, [str(c) for c in classes])
            kept = [sb for sb in boxes if sb.score >= SCORE_THRESHOLD]
            labels.append(canonical(sb.box for sb in kept))
            scores.append(min(sb.score for sb in kept) if kept else 1.0 - max((sb.score for sb in boxes), default=0.0))
        return labels, np.asarray(scores, dtype=float)

    def example_correct(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str] = ()) -> np.ndarray:
        """Whether each image's predicted box set (:meth:`best`) matches its given one object for object
        (same class, IoU at least 0.5, one to one), (n,) bool."""
        import numpy as np

        if not len(pred):
            return np.zeros(0, dtype=bool)
        predicted = self.best(np.asarray(pred), classes)[0]
        types = [str(c) for c in classes]
        return np.array([same_objects(_bp().given_boxes(row[None], types)[0], boxes_of(p), SAME_OBJECT_IOU)
                         for row, p in zip(np.asarray(y, dtype=float), predicted)], dtype=bool)

    # -- mining -------------------------------------------------------------------------------

    def label_issues(self, y: np.ndarray, pred: np.ndarray, classes: Sequence[str], inputs: pd.DataFrame | None = None) -> LabelIssues:
        """cleanlab's object-detection issues and label quality scores per image
        (:func:`data_engine.tasks.box_flags.find_box_issues`)."""
        from data_engine.tasks.box_flags import find_box_issues

        types = [str(c) for c in classes]
        given = _bp().given_boxes(y, types)
        predicted = [_bp().unpack(row, types) for row in pred]
        return find_box_issues(given, predicted, types, self.best(pred, types) if len(pred) else ([], []))

    def selection_uncertainty(self, pred: np.ndarray, method: str = "margin_sampling") -> np.ndarray:
        """Box predictions are not one distribution per image: every ``method`` ranks by :meth:`uncertainty`."""
        return self.uncertainty(pred)

    def uncertainty(self, pred: np.ndarray) -> np.ndarray:
        """Per image: 1 - the least sure box's distance from a coin toss (``|2 score - 1|``); 0 without boxes."""
        import numpy as np

        pred = np.asarray(pred, dtype=float)
        if not len(pred):
            return np.array([])
        slots = pred.reshape(len(pred), _bp().MAX_BOXES, _bp().SLOT)
        sure = np.where(slots[:, :, 4] >= 0, np.abs(2.0 * slots[:, :, 5] - 1.0), 1.0)
        return np.clip(1.0 - sure.min(axis=1), 0.0, 1.0)

    # -- review -------------------------------------------------------------------------------

    def labeling_config(self, item: str, partner: str, classes: Sequence[str], *, from_name: str,
                        to_name: str, discard: str, partner_prefix: str) -> str:
        """The image with ``<RectangleLabels>`` (one label per class), a ``<Choices>`` for ``discard``, and
        header lines with the given boxes, the model's and the suspect boxes (task field ``label_note``)."""
        headers = ('<Header value="Given boxes: $given_label" size="6"/>',
                   '<Header value="Suspect boxes: $label_note" size="5"/>',
                   '<Header value="Flagged as: $issue_types (priority $priority on a 0-1 scale); pre-drawn: the '
                   'model\'s boxes" size="6"/>')
        how = ("Fix the box set: move, resize, relabel or delete wrong boxes, draw missing ones (pick the "
               f"class, then drag). No boxes: nothing to detect. Or tick '{discard}'.")
        return regions_view(item, partner, classes, tag="RectangleLabels", headers=headers, how=how,
                            from_name=from_name, to_name=to_name, discard=discard,
                            discard_control=f"{from_name}{DISCARD_SUFFIX}", partner_prefix=partner_prefix)

    def prediction_result(self, label: str, *, from_name: str, to_name: str) -> list[dict[str, Any]]:
        """The discard answer as the discard choice; a box set needs the image's size
        (:meth:`review_result`). Raises ``ValueError`` for a box set."""
        if label == DISCARD:
            return [{"from_name": f"{from_name}{DISCARD_SUFFIX}", "to_name": to_name, "type": "choices",
                     "value": {"choices": [label]}}]
        raise ValueError("boxes are drawn in percent of the image: the review result needs the image's size")

    def review_result(self, label: str, data: Mapping[str, Any], *, from_name: str,
                      to_name: str) -> list[dict[str, Any]]:
        """One ``rectanglelabels`` region per box in percent of the image (``data``'s ``image_width`` and
        ``image_height``, pixels; :func:`data_engine.tasks.box_regions.regions`); the discard answer as
        the discard choice. Raises ``ValueError`` when ``data`` lacks the image's size."""
        from data_engine.tasks.box_regions import regions

        if label == DISCARD:
            return self.prediction_result(label, from_name=from_name, to_name=to_name)
        width, height = data.get(WIDTH_FIELD), data.get(HEIGHT_FIELD)
        if not isinstance(width, int) or not isinstance(height, int):
            raise ValueError(f"task data without the image's size ({WIDTH_FIELD}, {HEIGHT_FIELD})")
        return regions(boxes_of(label), width, height, from_name=from_name, to_name=to_name)

    def answer_label(self, result: Sequence[Mapping[str, Any]], *, from_name: str) -> str | None:
        """The drawn boxes in pixels as a stored box set (a submitted annotation without boxes is ``[]``):
        each region's own ``original_width`` / ``original_height`` convert it
        (:func:`data_engine.tasks.box_regions.answer_boxes`); the discard choice overrides any boxes;
        None when ``result`` is not a list. Malformed or rotated regions are ignored."""
        from data_engine.tasks.box_regions import answer_boxes

        if not isinstance(result, list):
            return None
        for region in result:
            if isinstance(region, Mapping) and region.get("from_name") == f"{from_name}{DISCARD_SUFFIX}":
                chosen = (region.get("value") or {}).get("choices") if isinstance(region.get("value"), Mapping) else None
                if isinstance(chosen, list) and DISCARD in chosen:
                    return DISCARD
        return answer_boxes(result, 0, 0, from_name=from_name)

    def answer_problem(self, label: str, choices: Sequence[str]) -> str | None:
        """The discard answer, or a box set of the dataset's classes with positive sizes; else what is wrong."""
        if label == DISCARD:
            return None
        try:
            boxes = parse(label)
        except NotABoxSet as exc:
            return str(exc)
        classes = [c for c in choices if c != DISCARD]
        for b in boxes:
            if b.w <= 0 or b.h <= 0:
                return f"box {b.label} at x={b.x:g}, y={b.y:g} has no size"
            if b.label not in classes:
                return f"class {b.label!r} is not one of the classes ({', '.join(classes)})"
        return None

    def consensus(self, labels: Sequence[str]) -> str | None:
        """Object-level majority: a box more than half the answers draw (same class, IoU at least 0.5)
        is kept, as the earliest answer drew it; a discard counts as one answer with no boxes, a majority
        of discards is the verdict, a tie of discards None."""
        if not labels:
            return None
        decided, verdict = discard_majority(labels, DISCARD)
        if decided:
            return verdict
        answers = [boxes_of(label) for label in labels if label != DISCARD]
        kept: list[Box] = []
        for boxes in answers:
            for b in boxes:
                votes = sum(any(same_object(b, o, SAME_OBJECT_IOU) for o in other) for other in answers)
                if 2 * votes > len(labels) and not any(same_object(b, k, SAME_OBJECT_IOU) for k in kept):
                    kept.append(b)
        return canonical(kept)

    def agreement(self, labels: Sequence[str], verdict: str) -> float:
        """The mean share of exact boxes each answer shares with ``verdict`` (Jaccard; 1 for two empty
        sets; a discard agrees only with a discard)."""
        return mean_jaccard(labels, verdict, _bp().boxes_or_empty, DISCARD)

    def oracle_label(self, value: Any) -> str:
        """An oracle value (a JSON list of boxes, or its text) in stored spelling."""
        try:
            return canonical(parse(value))
        except NotABoxSet as exc:
            raise ValueError(str(exc)) from None

    def wrong_answer(self, truth: str, classes: Sequence[str], rng: random.Random) -> str:
        """The true boxes with one box dropped or relabeled (uniformly); an image without objects gets a
        small box at its corner."""
        boxes = boxes_of(truth)
        if not boxes:
            return canonical([Box(rng.choice(list(classes)), 0, 0, 8, 8)])
        i = rng.randrange(len(boxes))
        others = [c for c in classes if c != boxes[i].label]
        if others and rng.random() < 0.5:
            boxes[i] = boxes[i]._replace(label=rng.choice(others))
        else:
            del boxes[i]
        return canonical(boxes)

    # -- ship ---------------------------------------------------------------------------------

    def metrics(self, y_true: np.ndarray, pred: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``map50`` (mAP at IoU 0.5, the mean over classes with gold boxes) and ``per_class_ap``
        (:func:`data_engine.tasks.box_metrics.average_precision`); ``pred``: scored box sets in text
        (n,) or prediction rows (n, width). ``None`` without gold boxes."""
        from data_engine.tasks.box_metrics import average_precision, scored_box_sets

        gold, scored, types = scored_box_sets(y_true, pred, classes)
        if not len(gold):
            return {"map50": None, "per_class_ap": {}}
        figure, per = average_precision(gold, scored, types)
        return {"map50": figure, "per_class_ap": per}

    def metric_names(self) -> tuple[str, ...]:
        """``map50``."""
        return ("map50",)

    def paired_test(self, y_true: np.ndarray, cand_pred: np.ndarray, champ_pred: np.ndarray, metric: str, *,
                    alpha: float) -> PairedDiff:
        """A paired bootstrap of mAP@0.5 over gold images (:func:`data_engine.tasks.box_metrics.paired_bootstrap_map`)."""
        from data_engine.tasks.box_metrics import paired_bootstrap_map, scored_box_sets

        self.check_metric(metric)
        gold, cand, types = scored_box_sets(y_true, cand_pred, ())
        _, champ, types2 = scored_box_sets(y_true, champ_pred, types)
        return paired_bootstrap_map(gold, cand, champ, types2, alpha=alpha)

    def class_recall(self, y_true: np.ndarray, pred: np.ndarray) -> dict[str, tuple[float, int]]:
        """Each gold class's box recall at IoU 0.5 (boxes scored at least SCORE_THRESHOLD) and its gold
        boxes, the gate's support (:func:`data_engine.tasks.box_metrics.class_recall`)."""
        from data_engine.tasks.box_metrics import class_recall, scored_box_sets

        gold, scored, types = scored_box_sets(y_true, pred, ())
        return class_recall(gold, scored, types, min_score=SCORE_THRESHOLD)

    def predict_fields(self) -> dict[str, Any] | None:
        """``/predict``: ``boxes`` (a list of box objects with a ``score``)."""
        return {"boxes": list[dict[str, Any]]}

    def predict_output(self, pred_row: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
        """``{"boxes": [{"label", "x", "y", "w", "h", "score"}]}`` in pixels, by falling score."""
        import json

        boxes = sorted(_bp().unpack(pred_row, [str(c) for c in classes]), key=lambda sb: -sb.score)
        return {"boxes": [json.loads(_bp().scored_text([sb]))[0] for sb in boxes]}

    def predict_table(self, pred: np.ndarray, classes: Sequence[str]) -> dict[str, np.ndarray]:
        """``predicted_boxes`` (every scored box, text) and ``predicted_score`` (:meth:`best`'s score)."""
        import numpy as np

        types = [str(c) for c in classes]
        texts = [_bp().scored_text(_bp().unpack(row, types)) for row in pred]
        return {"predicted_boxes": np.asarray(texts, dtype=object), "predicted_score": self.best(pred, types)[1]}

    def evaluate_output(self, figures: Mapping[str, Any], n: int) -> dict[str, Any]:
        """``{"map50", "per_class_ap", "n"}``."""
        return {"map50": figures.get("map50"), "per_class_ap": figures.get("per_class_ap", {}), "n": int(n)}

    def evaluate_lines(self, figures: Mapping[str, Any], n: int) -> tuple[str, list[str]]:
        """mAP@0.5, then each class's AP."""
        head = "mAP@0.5 " + (f"{figures['map50']:.4f}" if figures.get("map50") is not None else "- (no gold boxes)")
        return head, [f"  AP {c}: {ap:.4f}" for c, ap in figures.get("per_class_ap", {}).items()]

__all__ = ["Detection"]
