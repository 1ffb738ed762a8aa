"""An engine home for image files (from :func:`tests.homes.make_home`): the first digits written as
PNG files under landing/, with a manifest CSV ingested through the engine's own ingest (images
checked and stored under the home)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_engine.demo.image_files import IMAGE_FILES_CONFIG, write_digit_files
from data_engine.ingest.batch import ingest_file
from data_engine.store.home import Home
from data_engine.store.warehouse import open_warehouse
from tests.homes import make_home


def image_files_home(root: Path, *, n: int = 200, near_copies: int = 0, noise_every: int = 0,
                     extra_config: str = "") -> tuple[Home, pd.DataFrame, pd.DataFrame]:
    """A home with ``n`` digit PNGs (and ``near_copies`` near copies) ingested; every
    ``noise_every``-th label is shifted by one (0 = none). Returns the home, the manifest as
    landed (``id``, ``image``, ``label``, ``true_label``) and the injected near copies."""
    home = make_home(root, IMAGE_FILES_CONFIG + extra_config)
    files = write_digit_files(home.landing / "digits", n=n, near_copies=near_copies)
    manifest = files.manifest.assign(true_label=files.manifest["label"])
    if noise_every:
        flip = manifest.index % noise_every == noise_every - 1
        manifest.loc[flip, "label"] = ((manifest.loc[flip, "label"].astype(int) + 1) % 10).astype(str)
    manifest[["id", "image", "label"]].to_csv(files.manifest_path, index=False)
    with open_warehouse(home) as con:
        result = ingest_file(con, home.config.dataset, files.manifest_path)
    assert result.rows_ok == len(manifest), result.reason
    return home, manifest, files.near_copies
