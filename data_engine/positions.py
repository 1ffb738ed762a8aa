"""Where each of some ids sits among held ids: one lookup for every "ids -> rows" mapping.

Used where a million ids are matched (the issues table's example versions, a kept neighbour
index re-aligned to this run's rows), so it matches with pyarrow's hash join of the ids' Arrow
strings (``pyarrow.compute.index_in``): a pandas ``Index`` or ``Series.map`` over them made a
Python string of every id and a hash table of those (about +150 MiB at a million rows,
docs/mining.md). pyarrow has the join; only the conversion of both sides is written here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

Ids = pd.Series | np.ndarray | Sequence[str]


def positions_of(wanted: Ids, *held: Ids) -> np.ndarray:
    """The position in ``held`` of each of ``wanted`` (shape (M,) int64, in ``wanted``'s order;
    -1 for an id ``held`` lacks).

    ``held``: one array of ids (shape (N,)) or several, read as one after the other (positions
    count across them, as in their concatenation). An id ``held`` has twice gets the position of its first occurrence; an id
    ``wanted`` twice gets that position twice. Ids are compared as strings (``str`` of each).
    """
    known = pa.chunked_array([c for part in held for c in _arrow(part).chunks], type=pa.large_string())
    return pc.fill_null(pc.index_in(_arrow(wanted), value_set=known), -1).to_numpy().astype(np.int64, copy=False)


def _arrow(ids: Ids) -> pa.ChunkedArray:
    """``ids`` as one chunked Arrow large-string array (numpy's fixed-width strings and pandas'
    objects both convert without a Python string per id on the Arrow side)."""
    if isinstance(ids, pd.Series):
        ids = ids.astype(str)
    elif not (isinstance(ids, np.ndarray) and ids.dtype.kind == "U"):
        ids = np.asarray(ids, dtype=str)
    return pc.cast(pa.chunked_array([pa.array(ids, from_pandas=True)]), pa.large_string())
