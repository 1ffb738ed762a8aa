"""``image``: classical features of image files on a fixed-size resize (no pretrained weights).

Each image is decoded with Pillow, converted to RGB and resized to :data:`SIDE` x :data:`SIDE`;
the vector is the concatenation of

* HOG (Dalal & Triggs 2005; ``skimage.feature.hog``) of the grayscale resize: edge orientations per
  cell, the shape of what is drawn (324 values);
* a 16-bin intensity histogram and an 8-bin histogram per colour channel over fixed bins of
  [0, 1] (numpy's; scikit-image's ``exposure.histogram`` fits its bins to each image's range,
  which would make two images' histograms incomparable), as shares of the pixels (40 values);
* the grayscale image box-averaged to 8 x 8 (64 values), which keeps where the ink is.

No PyPI package ships pretrained image weights that run without a download (see the stack notes),
and on the digits these features reach 0.98 clean 5-fold accuracy with logistic regression.
Vectors depend on each file alone (``per_row``), so they are memoised per file (path, size and
modification time) in this process: the out-of-fold fits of a mining run decode each image once.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy and pandas load where used: the CLI starts without them
    import numpy as np
    import pandas as pd

from data_engine.errors import EngineError
from data_engine.mine.embedders.base import (
    Embedder,
    as_matrix,
    check_columns,
    register_embedder,
)

SIDE = 32
HOG_ORIENTATIONS = 9
HOG_CELL = 8
INTENSITY_BINS = 16
COLOUR_BINS = 8
THUMB_SIDE = 8
DIMENSIONS = 324 + INTENSITY_BINS + 3 * COLOUR_BINS + THUMB_SIDE * THUMB_SIDE
# Decoding and HOG run in C with the GIL released for most of the time: two threads use 2 cores.
THREADS = 2
# Vectors kept in memory (about 1.7 kB each): enough for every fold of a 50,000-image mining run.
MEMO_ENTRIES = 50_000


class _Memo:
    """A bounded, thread-safe least-recently-used map from a file's identity to its vector."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> np.ndarray | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[str, int, int], value: np.ndarray) -> None:
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_MEMO = _Memo(MEMO_ENTRIES)


def image_vector(path: str) -> np.ndarray:
    """The feature vector of one image file, float32 of shape (:data:`DIMENSIONS`,).

    Raises :class:`EngineError` naming the file when it is missing or cannot be decoded.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise EngineError(f"image {path}: cannot read ({exc.strerror or exc})") from None
    key = (path, st.st_size, st.st_mtime_ns)
    found = _MEMO.get(key)
    if found is not None:
        return found
    vector = _features(_load(path))
    _MEMO.put(key, vector)
    return vector


def _load(path: str) -> np.ndarray:
    """The image at ``path`` as RGB floats in [0, 1], resized to SIDE x SIDE, shape (SIDE, SIDE, 3)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            # JPEG decodes straight at a reduced scale when asked: large photos cost little.
            im.draft("RGB", (SIDE * 2, SIDE * 2))
            rgb = im.convert("RGB").resize((SIDE, SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as exc:
        raise EngineError(f"image {path}: cannot decode ({exc})") from None
    return np.asarray(rgb, dtype=np.float32) / 255.0


def _features(rgb: np.ndarray) -> np.ndarray:
    """HOG, histograms and the 8x8 thumbnail of one (SIDE, SIDE, 3) image (see the module doc)."""
    import numpy as np
    from skimage.feature import hog
    from skimage.transform import downscale_local_mean

    gray = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma, as Pillow's "L"
    parts = [hog(gray, orientations=HOG_ORIENTATIONS, pixels_per_cell=(HOG_CELL, HOG_CELL),
                 cells_per_block=(2, 2), feature_vector=True)]
    pixels = gray.size
    parts.append(_binned(gray, INTENSITY_BINS) / pixels)
    parts += [_binned(rgb[..., c], COLOUR_BINS) / pixels for c in range(3)]
    step = SIDE // THUMB_SIDE
    parts.append(downscale_local_mean(gray, (step, step)).ravel())
    return np.concatenate(parts).astype(np.float32)


def _binned(values: np.ndarray, bins: int) -> np.ndarray:
    """Counts of ``values`` in ``bins`` equal bins over [0, 1], shape (bins,)."""
    import numpy as np
    return np.histogram(values, bins=bins, range=(0.0, 1.0))[0].astype(np.float32)


def embed_paths(paths: Sequence[Any]) -> np.ndarray:
    """Feature vectors of image files, float32 of shape (N, :data:`DIMENSIONS`), in order.

    ``paths`` are absolute file paths (as :func:`data_engine.store.dataset.load_examples` returns
    stored images). A missing path (None) is an :class:`EngineError`.
    """
    import numpy as np
    items = list(paths)
    for i, p in enumerate(items):
        if p is None or (isinstance(p, float) and np.isnan(p)):
            raise EngineError(f"image embedding: row {i} has no image path")
    if not items:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    if len(items) == 1:
        return image_vector(str(items[0]))[None, :]
    with ThreadPoolExecutor(THREADS) as pool:
        return np.vstack(list(pool.map(image_vector, map(str, items))))


def embed_image_column(X: Any) -> np.ndarray:
    """A scikit-learn ``FunctionTransformer`` function: one column of image paths (N, 1) -> (N, D).

    Module-level, so a model holding it can be saved and loaded with skops by name.
    """
    import numpy as np
    import pandas as pd
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object).reshape(len(X), -1))
    if frame.shape[1] != 1:
        raise EngineError(f"image embedding reads one column of image paths, got {frame.shape[1]}")
    return embed_paths(frame.iloc[:, 0].tolist())


def image_block(scale: bool) -> Any:
    """A scikit-learn transformer: one column of image paths -> these features, standardised if ``scale``."""
    from sklearn.pipeline import FunctionTransformer, make_pipeline
    from sklearn.preprocessing import StandardScaler

    features = FunctionTransformer(embed_image_column)
    return make_pipeline(features, StandardScaler()) if scale else features


@register_embedder
class ImageEmbedder(Embedder):
    """Classical image features (HOG, histograms, thumbnail) of the image files a column names."""

    name = "image"
    modalities = ("image",)
    version = "1"

    def input_columns(self, schema: Mapping[str, str]) -> list[str]:
        """The image file columns."""
        return [c for c, kind in schema.items() if kind == "image"]

    def embed(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Embed the image file of each row (one column of absolute paths); float32 of shape (N, 428)."""
        cols = check_columns(frame, columns, self.name)
        if len(cols) != 1:
            raise EngineError(f"embedding 'image' reads one image column, got {len(cols)}: {', '.join(cols)}")
        return as_matrix(embed_paths(frame[cols[0]].tolist()), len(frame), self.name)
