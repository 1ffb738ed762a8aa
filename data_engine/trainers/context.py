"""What only the engine knows, for the user's trainer's manifest: the dataset's class names (mining
fits on class indices), the label snapshot and where the training images are.

The model members are built from the config alone (:mod:`data_engine.mine.models`); the steps that
fit them add these entries with :func:`with_engine_manifest` (as estimator parameters, so the
clones fitted per fold, here or on a compute worker, carry them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from data_engine.store.config import EngineConfig
from data_engine.store.images import IMAGES_DIR, warehouse_home
from data_engine.trainers.command import CommandModel


def engine_manifest(con: Any, cfg: EngineConfig, classes: Sequence[str], label_snapshot: int) -> dict[str, Any]:
    """``class_names`` (classification, tags, boxes and spans: the dataset's classes, which index-coded labels index), ``label_snapshot``
    (the label ledger's highest event id the labels come from) and ``image_root`` (the engine's
    copies of the landed images, ``HOME/images``, under which every training image path lies; None
    without an image column or a warehouse file). ``con``: the open warehouse, or None."""
    home = warehouse_home(con) if con is not None else None
    image_root = str(home / IMAGES_DIR) if home is not None and cfg.dataset.image_column else None
    entries: dict[str, Any] = {"label_snapshot": int(label_snapshot), "image_root": image_root}
    if cfg.dataset.task in ("classification", "multilabel", "detection", "ner"):
        # Mining's labels index the classes (tags: the columns of a 0/1 matrix; boxes and spans: their
        # encoded class indices); the trainer gets names.
        entries["class_names"] = [str(c) for c in classes]
    return entries


def _trainer_in(est: Any) -> tuple[CommandModel, str] | None:
    """The user's trainer ``est`` is or wraps (the served regressor's interval wrapper), and the
    parameter prefix that reaches it; None for the engine's own models."""
    if isinstance(est, CommandModel):
        return est, ""
    inner = getattr(est, "estimator", None)
    return (inner, "estimator__") if isinstance(inner, CommandModel) else None


def with_engine_manifest(estimators: Mapping[str, Any], entries: Mapping[str, Any]) -> dict[str, Any]:
    """``estimators`` (name -> unfitted estimator) with each of the user's trainers given ``entries``
    in its manifest; the others as they are."""
    out = dict(estimators)
    for name, est in out.items():
        if (found := _trainer_in(est)) is not None:
            trainer, prefix = found
            out[name] = est.set_params(**{f"{prefix}manifest": {**(trainer.manifest or {}), **entries}})
    return out


def with_example_ids(X: Any, ids: Sequence[Any], estimators: Mapping[str, Any]) -> Any:
    """``X`` (a DataFrame, N rows) with the engine's example ids (shape (N,)) as its ``example_id``
    column when every estimator is the user's trainer, so ``TRAIN.parquet`` names the examples;
    ``X`` itself otherwise (the engine's own members are given their input columns only)."""
    if not estimators or not all(_trainer_in(e) is not None for e in estimators.values()):
        return X
    return X.assign(example_id=[str(i) for i in ids])
