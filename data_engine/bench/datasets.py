"""Datasets with known labels for the benchmarks, and seeded label noise.

``digits`` ships with scikit-learn; ``sentiment`` reads the Sentiment Labelled Sentences when the
shared data folder is present; ``tabular`` is generated (numbers with missing values, categories,
short free text) at any size, so cost can be measured at a million rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from data_engine.errors import EngineError

SENTIMENT_DIR_ENV = "DATA_ENGINE_SENTIMENT_DIR"
# The shared data folder sits next to the checkout on the machines this was built on.
DEFAULT_SENTIMENT_DIRS = (Path(__file__).resolve().parents[3] / "shared" / "data" / "sentiment-sentences",)

NoiseKind = Literal["uniform", "class-conditional"]


@dataclass(frozen=True)
class BenchDataset:
    """A dataset with clean labels: ``frame`` holds the input columns; ``labels`` shape (N,): class
    names (str), or a regression's numbers, or a multi-label set's tag cells (the home's config then
    names the task and the tags: :func:`data_engine.bench.homes.make_home`)."""

    name: str
    modality: str
    frame: pd.DataFrame
    labels: np.ndarray
    schema: dict[str, str]
    text_column: str | None = None
    # Image files: the folder holding them (the config's image_root) and the injected near copies
    # (``copy_row``, ``source_row``: row positions in ``frame``; ``kind``; see data_engine.demo.image_files).
    image_root: Path | None = None
    near_copies: pd.DataFrame | None = None
    # Per row, the source it came from (sentiment: the site, "amazon", "imdb" or "yelp"), or None.
    groups: np.ndarray | None = None

    @property
    def classes(self) -> list[str]:
        """Sorted class names."""
        return sorted(np.unique(self.labels).tolist())


def load_digits_dataset() -> BenchDataset:
    """scikit-learn's 8x8 digits (1,797 images, 10 classes) as 64 pixel columns."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    cols = [f"px{i:02d}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X.astype(np.float64), columns=cols)
    return BenchDataset("digits", "image", frame, y.astype(str).astype(object), {c: "numeric" for c in cols})


def load_sklearn_table(name: str) -> BenchDataset:
    """scikit-learn's bundled ``breast-cancer`` (569 rows, 30 numbers, 2 classes) or ``wine``
    (178 rows, 13 numbers, 3 classes) as a tabular set."""
    from sklearn import datasets

    loaders = {"breast-cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}
    if name not in loaders:
        raise EngineError(f"unknown bundled table {name!r}; use one of: {', '.join(loaders)}")
    bunch = loaders[name]()
    cols = [f"f{i:02d}" for i in range(bunch.data.shape[1])]
    frame = pd.DataFrame(bunch.data.astype(np.float64), columns=cols)
    labels = np.asarray(bunch.target_names, dtype=object)[bunch.target]
    return BenchDataset(name, "tabular", frame, labels.astype(str).astype(object), {c: "numeric" for c in cols})


def load_digit_files_dataset(folder: Path, *, seed: int = 0) -> BenchDataset:
    """The digits as 32x32 PNG files written under ``folder`` (absolute paths in column ``image``),
    plus :data:`DIGIT_FILES_NEAR_COPIES` near copies (resized, re-encoded, shifted) of random digits."""
    from data_engine.demo.image_files import write_digit_files

    files = write_digit_files(folder, near_copies=DIGIT_FILES_NEAR_COPIES, seed=seed)
    return _image_files_dataset("digits-files", folder, files.manifest, files.near_copies)


def load_shape_files_dataset(folder: Path, *, seed: int = 0) -> BenchDataset:
    """:data:`SHAPE_FILES` distinct drawn shapes (64x64 PNG; the label is the kind of shape) written
    under ``folder``, plus :data:`SHAPE_FILES_NEAR_COPIES` near copies (resized, re-encoded, shifted
    by 1-2 px); see :mod:`data_engine.demo.drawn_shapes`."""
    from data_engine.demo.drawn_shapes import write_shape_files

    files = write_shape_files(folder, n=SHAPE_FILES, near_copies=SHAPE_FILES_NEAR_COPIES, seed=seed)
    return _image_files_dataset("shapes-files", folder, files.manifest, files.near_copies)


def _image_files_dataset(name: str, folder: Path, manifest: pd.DataFrame, near_copies: pd.DataFrame) -> BenchDataset:
    """A dataset of image files listed in ``manifest`` (``id``, ``image`` relative to ``folder``,
    ``label``) with its injected ``near_copies`` (``id``, ``copy_of``, ``kind``) as row positions."""
    row = pd.Series(range(len(manifest)), index=manifest["id"])
    copies = pd.DataFrame({"copy_row": row[near_copies["id"]].to_numpy(),
                           "source_row": row[near_copies["copy_of"]].to_numpy(),
                           "kind": near_copies["kind"].to_numpy()})
    frame = pd.DataFrame({"image": (str(folder.resolve()) + "/" + manifest["image"]).to_numpy(dtype=object)})
    return BenchDataset(name, "image", frame, manifest["label"].to_numpy(dtype=object),
                        {"image": "image"}, image_root=folder.resolve(), near_copies=copies)


# Near copies injected into the digit files: 5 % of the 1,797 digits, a third of each kind.
DIGIT_FILES_NEAR_COPIES = 90
# The drawn shapes: distinct drawings and near copies of some (a third of each kind).
SHAPE_FILES = 400
SHAPE_FILES_NEAR_COPIES = 60


def sentiment_dir() -> Path | None:
    """The Sentiment Labelled Sentences folder, if present (``$DATA_ENGINE_SENTIMENT_DIR`` first)."""
    env = os.environ.get(SENTIMENT_DIR_ENV)
    for d in ([Path(env)] if env else []) + list(DEFAULT_SENTIMENT_DIRS):
        if d.is_dir() and any(d.glob("*_labelled.txt")):
            return d
    return None


def load_sentiment_dataset() -> BenchDataset:
    """3,000 review sentences (amazon, imdb, yelp), labels 'neg' / 'pos'."""
    folder = sentiment_dir()
    if folder is None:
        raise EngineError(f"sentiment sentences not found; set {SENTIMENT_DIR_ENV} to the folder with *_labelled.txt")
    parts = []
    for path in sorted(folder.glob("*_labelled.txt")):
        # Sentences contain quotes; the file is plain "sentence<TAB>0|1" lines.
        raw = pd.read_csv(path, sep="\t", header=None, names=["sentence", "score"], quoting=3, dtype=str)
        parts.append(raw.assign(site=path.name.split("_")[0]))
    df = pd.concat(parts, ignore_index=True).dropna()
    labels = np.where(df["score"].str.strip() == "1", "pos", "neg").astype(object)
    frame = pd.DataFrame({"sentence": df["sentence"].str.strip().astype(object).to_numpy()})
    return BenchDataset("sentiment", "text", frame, labels, {"sentence": "text"}, text_column="sentence",
                        groups=df["site"].to_numpy(dtype=object))


def make_tabular_dataset(rows: int, *, n_classes: int = 10, seed: int = 0) -> BenchDataset:
    """A generated tabular set: 6 numbers (two with 10 % missing), 2 categories, a 3-word note.

    Every column carries some signal about the class and none alone decides it, so a model that
    ignores the categories or the text is measurably worse.
    """
    if rows < n_classes * 10:
        raise EngineError(f"--rows must be at least {n_classes * 10} for {n_classes} classes")
    rng = np.random.default_rng(seed)
    y = rng.integers(0, n_classes, rows)
    centres = rng.normal(0.0, 1.0, (n_classes, 6))
    num = centres[y] + rng.normal(0.0, 1.3, (rows, 6))
    num[:, :2][rng.random((rows, 2)) < 0.10] = np.nan
    frame = pd.DataFrame(num, columns=[f"x{i}" for i in range(6)])
    frame["color"] = _sample_categories(rng, y, n_classes, n_levels=8, concentration=0.6, prefix="c")
    frame["region"] = _sample_categories(rng, y, n_classes, n_levels=30, concentration=2.0, prefix="r")
    vocab_class = np.array([f"w{c}_{j}" for c in range(n_classes) for j in range(6)], dtype=object).reshape(n_classes, 6)
    vocab_common = np.array([f"common{j}" for j in range(40)], dtype=object)
    words = []
    for _ in range(3):
        own = vocab_class[y, rng.integers(0, 6, rows)]
        other = vocab_common[rng.integers(0, len(vocab_common), rows)]
        words.append(np.where(rng.random(rows) < 0.35, own, other))
    frame["note"] = words[0] + " " + words[1] + " " + words[2]
    frame.loc[rng.random(rows) < 0.05, "color"] = None
    schema = {**{f"x{i}": "numeric" for i in range(6)}, "color": "categorical", "region": "categorical",
              "note": "categorical"}
    labels = np.array([f"class_{c}" for c in range(n_classes)], dtype=object)[y]
    return BenchDataset("tabular", "tabular", frame, labels, schema)


def _sample_categories(rng: np.random.Generator, y: np.ndarray, n_classes: int, *, n_levels: int,
                       concentration: float, prefix: str) -> np.ndarray:
    """Per-class category distributions (Dirichlet), sampled by inverse CDF, vectorised over rows."""
    dist = rng.dirichlet(np.full(n_levels, concentration), n_classes)
    cdf = np.cumsum(dist, axis=1)
    u = rng.random(len(y))[:, None]
    level = np.minimum((u > cdf[y]).sum(axis=1), n_levels - 1)
    return np.array([f"{prefix}{j}" for j in range(n_levels)], dtype=object)[level]


def inject_noise(labels: np.ndarray, classes: list[str], *, rate: float, kind: NoiseKind, seed: int) -> np.ndarray:
    """Flip a ``rate`` share of ``labels`` (shape (N,)) at ``seed``; return the noisy copy.

    ``uniform``: a flipped label becomes any other class with equal chance. ``class-conditional``:
    a fixed confusion between pairs of classes (class 2i <-> 2i+1 in sorted order; with an odd
    number of classes the last one goes to the first).
    """
    if not 0.0 <= rate < 1.0:
        raise EngineError(f"--noise must be in [0, 1), got {rate}")
    rng = np.random.default_rng(seed)
    index = {c: i for i, c in enumerate(classes)}
    y = pd.Series(labels).map(index).to_numpy()
    k = len(classes)
    flip = rng.random(len(y)) < rate
    if kind == "uniform":
        new = (y + rng.integers(1, k, len(y))) % k
    elif kind == "class-conditional":
        partner = np.arange(k) ^ 1
        partner[partner >= k] = 0
        new = partner[y]
    else:
        raise EngineError(f"--noise-kind must be uniform or class-conditional, got {kind!r}")
    noisy = np.where(flip, new, y)
    return np.asarray(classes, dtype=object)[noisy]
