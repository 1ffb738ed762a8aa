"""``bench drift --images``: false alarms and detection of batch drift on image files.

Data: scikit-learn's bundled digits (1,797 8x8 images; no download), written as PNG files
(:func:`data_engine.demo.image_files.digit_image`) and shuffled first (the table is stored in
blocks by writer: another writer's hand is a real change). ``reference`` images are the training
data in force; ``batches`` batches of ``batch_rows`` images drawn at random from the other images
are the same distribution (any flag is a false alarm), and as many changed ones are drawn the same
way and then inverted (white ink on black: another camera) or made faint (ink at half its
strength: a worn pen, a lighter scan), alternately. An image-file data set has no column a test
reads one value at a time: the engine compares such a batch by the domain classifier on the image
embedding alone (:func:`data_engine.ship.drift_check.check_batch_drift` for an unlabeled batch
without a champion), so detected = flagged.

Every image is embedded once with the engine's ``image`` embedder (the vectors ``ingest`` reads
from the warehouse's embedding store) and each batch is judged by
:func:`data_engine.ingest.drift.batch_drift` with the default ``[drift]`` thresholds, the call
``ingest`` makes on the same vectors. Landing the batches as files through ``ingest`` instead took
about 2.6 minutes a batch on the shared machine (5 batches in 13 minutes at load 20; its AUCs on 2
unchanged batches: mean 0.52, max 0.55; on 2 changed: at least 0.997); ``tests/ingest/test_batch_drift.py``
covers that path.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

CHANGES = ("inverted", "faint")


def _vectors(pixels: np.ndarray, folder: Path, change: str | None = None) -> np.ndarray:
    """The ``image`` embedding (n, D) of the digits ``pixels`` (n, 64) written as PNG files under
    ``folder``; ``change``: one of :data:`CHANGES`, or None for the images as they are."""
    from PIL import ImageOps

    from data_engine.demo.image_files import digit_image
    from data_engine.mine.embedders.image import embed_paths

    folder.mkdir(parents=True)
    paths = []
    for i, values in enumerate(pixels):
        image = digit_image(values / 2 if change == "faint" else values)
        paths.append(folder / f"{i}.png")
        (ImageOps.invert(image) if change == "inverted" else image).save(paths[-1])
    return embed_paths(paths)


def run_images(batches: int, reference_rows: int, batch_rows: int, seed: int) -> dict[str, float]:
    """Detection and false-alarm rates of image-file batches (module docstring), and the domain
    classifier's AUC on the unchanged batches (``auc_mean``, ``auc_max``) and the changed ones
    (``auc_changed_min``). Raises ValueError when the digits cannot hold the reference and one batch."""
    from sklearn.datasets import load_digits

    from data_engine.ingest.drift import batch_drift

    digits = load_digits()
    if reference_rows + batch_rows > len(digits.target):
        raise ValueError(f"bench drift --images: {reference_rows} + {batch_rows} rows, the digits hold "
                         f"{len(digits.target)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(digits.target))
    train, pool = order[:reference_rows], order[reference_rows:]
    root = Path(tempfile.mkdtemp(prefix="bench-drift-images-"))
    try:
        every = _vectors(digits.data, root / "digits")
        names = [f"embedding {i}" for i in range(every.shape[1])]

        def judged(vectors: np.ndarray) -> tuple[bool, float]:
            reference = pd.DataFrame(every[train], columns=names)
            batch = pd.DataFrame(vectors, columns=names)
            report = batch_drift(reference[[]], batch[[]], embedding=(reference, batch))
            return report.drifted, float(report.auc)

        same_auc, changed_auc = [], []
        false = detected = 0
        for i in range(batches):
            flagged, auc = judged(every[rng.choice(pool, batch_rows, replace=False)])
            false, same_auc = false + flagged, same_auc + [auc]
            change = CHANGES[i % len(CHANGES)]
            drawn = digits.data[rng.choice(pool, batch_rows, replace=False)]
            flagged, auc = judged(_vectors(drawn, root / f"changed{i}", change))
            detected, changed_auc = detected + flagged, changed_auc + [auc]
        return {"detected": detected / batches, "false": false / batches, "auc_mean": float(np.mean(same_auc)),
                "auc_max": float(np.max(same_auc)), "auc_changed_min": float(np.min(changed_auc))}
    finally:
        shutil.rmtree(root, ignore_errors=True)
