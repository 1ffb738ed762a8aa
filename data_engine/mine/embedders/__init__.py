"""Embedders, one plug-in per way of turning examples into vectors (see :mod:`.base`).

``[mining] embedding`` names one; ``"auto"`` picks per modality (:data:`AUTO_EMBEDDING`).
"""

from __future__ import annotations

from typing import Any

from data_engine.errors import EngineError
from data_engine.mine.embedders.base import EMBEDDERS, Embedder, get_embedder, register_embedder
from data_engine.mine.embedders.column import ColumnEmbedder
from data_engine.mine.embedders.e5 import E5SmallEmbedder
from data_engine.mine.embedders.image import ImageEmbedder
from data_engine.mine.embedders.tfidf import TfidfEmbedder

__all__ = ["AUTO_EMBEDDING", "AUTO_IMAGE_FILES_EMBEDDING", "configured_embedding", "EMBEDDERS", "ColumnEmbedder", "E5SmallEmbedder", "Embedder", "ImageEmbedder", "TfidfEmbedder",
           "get_embedder",
           "register_embedder", "resolve_embedding"]

# The embedder "auto" chooses per modality, chosen by `data-engine bench detect` (docs/mining.md):
# on sentiment sentences e5-small lifts label-error F1 far above TF-IDF.
AUTO_EMBEDDING: dict[str, str] = {"text": "e5-small", "tabular": "tfidf", "image": "tfidf"}
# Image *files* (``[dataset] image_column``) have no pixel columns for TF-IDF's scaled numbers: "auto"
# reads them with the image embedder, whose vectors are stored per content like e5's.
AUTO_IMAGE_FILES_EMBEDDING = "image"


def resolve_embedding(name: str, modality: str, *, image_files: bool = False) -> str:
    """The embedder name ``[mining] embedding = name`` means for ``modality`` (``image_files``: the
    dataset has an image-path column); raise EngineError if unknown."""
    if name == "auto":
        chosen = AUTO_IMAGE_FILES_EMBEDDING if image_files and modality == "image" else AUTO_EMBEDDING.get(modality, "tfidf")
    else:
        chosen = name
    if chosen not in EMBEDDERS:
        raise EngineError(f"mining.embedding = {name!r}: unknown embedding; use 'auto' or one of: "
                          f"{', '.join(EMBEDDERS)}")
    if modality not in EMBEDDERS[chosen].modalities:
        raise EngineError(f"mining.embedding = {name!r}: embeds {', '.join(EMBEDDERS[chosen].modalities)} "
                          f"data, not {modality!r}")
    return chosen


def configured_embedding(cfg: Any) -> str:
    """The embedder ``[mining] embedding`` of an ``EngineConfig`` means for its data set: its
    modality, and whether it holds image files (``[dataset] image_column``)."""
    return resolve_embedding(cfg.mining.embedding, cfg.dataset.modality, image_files=bool(cfg.dataset.image_column))

