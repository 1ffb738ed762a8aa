"""The tests' one way to build an engine home: :func:`make_home` writes a config, creates the home
with the engine's own ``init`` (so the config is validated and the warehouse migrated by the
engine's migrations) and, given a ``seed``, fills it with a digits split through the engine's own
ingest (CSV files in ``landing/``, gold ones in ``landing/gold/``).

The other builders of ``tests/`` (``conftest.make_home``, ``loop_support``, ``review_support``,
``image_support``) are thin layers over this one.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tomlkit

from data_engine.commands.core import default_config_text, init_home
from data_engine.ingest.batch import IngestResult, ingest_file
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse

PIXELS = [f"px{i}" for i in range(64)]

# The mining model the loop's tests use unless they say otherwise: the tests exercise the loop, not
# the model family, and a linear model fits in a fraction of the default's time.
FAST_MODEL: dict[str, dict[str, Any]] = {"mining": {"model": "linear"}}


def config_text(config: str | Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """An engine.toml: ``None`` is the embedded default (the digits demo); a mapping of sections
    replaces those keys of the default's sections (``{"gate": {"slices": [{...}]}}`` adds tables);
    a string is a whole engine.toml, used as it is."""
    if isinstance(config, str):
        return config
    if config is None:
        return default_config_text()
    merged = tomllib.loads(default_config_text())
    for section, values in config.items():
        merged.setdefault(section, {}).update(values)
    return tomlkit.dumps(merged)


def make_home(root: Path, config: str | Mapping[str, Mapping[str, Any]] | None = None, *,
              seed: int | None = None, name: str = "home", **split: Any) -> Home:
    """A fresh engine home at ``root / name`` (its config also kept at ``root / f"{name}.toml"``).

    ``config`` as in :func:`config_text`; an existing home there gets the new config. ``seed``
    None leaves the warehouse empty (created by the engine's migrations on first open); an int
    ingests :func:`digits_split` (``split`` passes ``n_train``, ``n_gold``, ``n_unlabeled``,
    ``noise``) as :func:`seed_digits` does.
    Raises the engine's ``ConfigError`` for a config that does not validate.
    """
    root.mkdir(parents=True, exist_ok=True)
    cfg = root / f"{name}.toml"
    cfg.write_text(config_text(config), encoding="utf-8")
    home = Home(root / name)
    init_home(home, cfg, force=True)  # a test may rebuild a home in place with another config
    if seed is not None:
        seed_digits(home, seed=seed, **split)
    elif split:
        raise TypeError(f"make_home: {sorted(split)} need a seed")
    return home


def digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits: features, shape (1797, 64), and labels as str, shape (1797,)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(float), d.target.astype(str)


def digits_split(*, n_train: int = 600, n_gold: int = 300, n_unlabeled: int = 100, noise: float = 0.0,
                 seed: int = 0) -> dict[str, Any]:
    """A seeded split of the digits: ``ids`` (``d0000``...), ``X``, true labels ``y``, ``noisy``
    labels (``noise`` of the training labels moved to another class), ``parts`` (row indices of
    train, gold, unlabeled) and the ids ``flipped``. Pure: the same arguments give the same split."""
    X, y = digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    parts = {"train": order[:n_train], "gold": order[n_train:n_train + n_gold],
             "unlabeled": order[n_train + n_gold:n_train + n_gold + n_unlabeled]}
    noisy = y.copy()
    tr = parts["train"]
    flip = rng.choice(tr, size=int(round(noise * len(tr))), replace=False)
    noisy[flip] = ((y[flip].astype(int) + rng.integers(1, 10, size=len(flip))) % 10).astype(str)
    ids = np.array([f"d{i:04d}" for i in range(len(y))])
    return {"ids": ids, "X": X, "y": y, "noisy": noisy, "parts": parts, "flipped": ids[flip]}


def ingest_rows(con: Any, home: Home, ids: Sequence[str], X: np.ndarray, labels: Sequence[str | None], *,
                batch: str, gold: bool = False) -> IngestResult:
    """Write rows (``X`` shape (n, 64) over :data:`PIXELS`; a None label is an empty cell) as
    ``landing/[gold/]{batch}.csv`` and ingest that file with the engine's ingest; every row must load."""
    frame = pd.DataFrame(np.asarray(X, dtype=float), columns=PIXELS)
    frame.insert(0, "id", list(ids))
    frame["label"] = list(labels)
    folder = home.gold_landing if gold else home.landing
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{batch}.csv"
    frame.to_csv(path, index=False)
    result = ingest_file(con, home.config.dataset, path, gold=gold)
    assert result.rows_ok == len(frame), (path, result.status, result.reason)
    return result


# Seeding goes through the engine's ingest (about half a second a home); the loop's tests seed the
# same split into many fresh homes, so the first seeding of a (config, split) keeps a copy of the
# warehouse and the landed files, and later fresh homes get copies of them: the same rows, batches
# and label events, only the batches' paths name the first home's files.
_SEEDED: dict[tuple[object, ...], Path] = {}
_SEED_CACHE: list[Path] = []


def _seed_cache() -> Path:
    """The folder of kept seedings, made on first use (not at import: every worker process that
    unpickles a test's function imports this module, and one killed with its pool never ran atexit)."""
    if not _SEED_CACHE:
        _SEED_CACHE.append(Path(tempfile.mkdtemp(prefix="seeded-homes-")))
        atexit.register(shutil.rmtree, _SEED_CACHE[0], True)
    return _SEED_CACHE[0]


def seed_digits(home: Home, *, n_train: int = 600, n_gold: int = 300, n_unlabeled: int = 100,
                noise: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Ingest :func:`digits_split` into the home: batches ``train-1``, ``gold-1`` (gold) and
    ``unlabeled-1`` (empty parts are skipped); return the split."""
    info = digits_split(n_train=n_train, n_gold=n_gold, n_unlabeled=n_unlabeled, noise=noise, seed=seed)
    key = (home.config_path.read_text(encoding="utf-8"), n_train, n_gold, n_unlabeled, noise, seed)
    fresh = not home.warehouse_path.exists()
    if fresh and key in _SEEDED:
        shutil.copytree(_SEEDED[key], home.root, dirs_exist_ok=True)
        return info
    ids, X, parts = info["ids"], info["X"], info["parts"]
    batches = [("train-1", parts["train"], info["noisy"], False), ("gold-1", parts["gold"], info["y"], True),
               ("unlabeled-1", parts["unlabeled"], None, False)]
    with open_warehouse(home) as con:
        for batch, rows, labels, gold in batches:
            if len(rows):
                ingest_rows(con, home, list(ids[rows]), X[rows],
                            [None] * len(rows) if labels is None else list(labels[rows]), batch=batch, gold=gold)
    if fresh:  # the warehouse is closed (checkpointed): keep it and the landed files
        kept = _seed_cache() / str(len(_SEEDED))
        shutil.copytree(home.landing, kept / home.landing.relative_to(home.root))
        shutil.copy2(home.warehouse_path, kept / home.warehouse_path.relative_to(home.root))
        _SEEDED[key] = kept
    return info
