"""The embedder plug-in contract: an embedder maps the input columns of a frame of examples to a
dense float32 matrix (one row per example), and the registry of embedders by name.

An embedder whose ``per_row`` is True (``e5-small``, ``image``, ``column``) computes each row from
that row alone: its output is a pure function of a batch of rows, so it can be cached per content
version (:mod:`data_engine.mine.embedders.cache`) and computed batch by batch anywhere (a Dask task,
the prediction service). ``tfidf`` is fitted on the corpus it is given, so it is not cached.

Embedder modules import numpy, pandas and their models inside methods: the config validates
``[mining] embedding`` through this registry, and commands such as ``ingest`` start without them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

from data_engine.errors import EngineError
from data_engine.plugins import Registry


# The frame column that carries precomputed vectors (one float32 array per row) into a model: mining
# and training read them from the cache; a request to the served model without it is embedded.
EMBEDDING_COLUMN = "__embedding"


class Embedder(ABC):
    """One way of turning examples into vectors. Subclasses set the class attributes and implement
    :meth:`embed`; ``__init__`` takes keyword options only (see :func:`get_embedder`)."""

    # Registry key, as written in ``[mining] embedding`` (e.g. "tfidf", "e5-small", "image", "column").
    name: ClassVar[str]
    # Dataset modalities it can embed ("text", "tabular", "image").
    modalities: ClassVar[tuple[str, ...]]
    # Bump when the output for the same input changes: part of the cache key.
    version: ClassVar[str]
    # True when a row's vector depends on that row alone (cacheable, batchable); False when the
    # embedder is fitted on the frame it embeds.
    per_row: ClassVar[bool] = True
    # True when vectors come on a common scale (e.g. L2-normalised): models read them as they are;
    # otherwise the embedding member standardises them first.
    normalised: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        if options:
            raise EngineError(f"embedding {self.name!r} takes no options (got {', '.join(sorted(options))})")

    @abstractmethod
    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Embed the rows of ``frame`` from its ``columns``.

        Returns float32 of shape (N, D), one row per frame row, in order. D is fixed for a given
        embedder and dataset. Raises :class:`EngineError` when a column is missing or unusable.
        """

    def describe(self, schema: Mapping[str, str], modality: str) -> str:
        """What the vectors are for a data set of ``schema`` (``{column: kind}``) and ``modality``,
        in a few words for people; by default the embedder's name."""
        return self.name

    def input_columns(self, schema: Mapping[str, str]) -> list[str]:
        """The columns of ``schema`` (``{column: 'numeric' | 'categorical' | 'text' | 'vector'}``) it
        embeds; by default all of them. Subclasses narrow this to what they can read."""
        return list(schema)

    @property
    def cache_key(self) -> str:
        """``name@version``: which embedder made a stored vector."""
        return f"{self.name}@{self.version}"


def check_columns(frame: pd.DataFrame, columns: Sequence[str], embedder: str) -> list[str]:
    """``columns`` as a list, after checking they are in ``frame``; raise EngineError naming one that is not."""
    cols = list(columns)
    if not cols:
        raise EngineError(f"embedding {embedder!r} needs at least one input column")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise EngineError(f"embedding {embedder!r}: column {missing[0]!r} is not in the data")
    return cols


def as_matrix(vectors: Any, n: int, embedder: str) -> np.ndarray:
    """``vectors`` as C-contiguous float32 of shape (n, D); raise EngineError on a wrong shape or non-finite values."""
    import numpy as np

    X = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    if X.ndim != 2 or X.shape[0] != n:
        raise EngineError(f"embedding {embedder!r} returned shape {X.shape}, expected ({n}, D)")
    if X.size and not np.isfinite(X).all():
        row = int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0])
        raise EngineError(f"embedding {embedder!r}: row {row} has a missing or infinite value")
    return X


# The embedders by name: the built-ins and those of the ``data_engine.embedders`` entry points.
EMBEDDERS: Registry[type[Embedder]] = Registry("embedding", "data_engine.embedders", name_attr="name", base=Embedder)


def register_embedder(cls: type[Embedder]) -> type[Embedder]:
    """Class decorator adding an embedder to :data:`EMBEDDERS` under its ``name``."""
    return EMBEDDERS.register(cls)


def get_embedder(name: str, **options: Any) -> Embedder:
    """An embedder instance by name, built with ``options``; raise EngineError naming the known ones.

    The built-in embedders are registered when :mod:`data_engine.mine.embedders` is imported
    (which importing this module does, as its parent package).
    """
    return EMBEDDERS.get_piece(name)(**options)
