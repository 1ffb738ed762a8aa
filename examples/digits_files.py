"""The image-files example: scikit-learn's digits as 32x32 PNG files, a manifest CSV and a config.

    python examples/digits_files.py OUT [--near-copies 90] [--noise 0.2] [--seed 0]
    data-engine --home OUT/home init --config OUT/digits-files.toml
    cp -r OUT/images OUT/digits_files.csv OUT/home/landing/
    data-engine --home OUT/home ingest OUT/home/landing/digits_files.csv

Writes OUT/images/*.png (1,797 digits, plus near copies if asked), OUT/digits_files.csv (``id``,
``image`` relative to the CSV, ``label`` with ``--noise`` of the labels flipped) and
OUT/digits-files.toml. The files are generated, never committed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_engine.demo.data import flip_labels
from data_engine.demo.image_files import IMAGE_FILES_CONFIG, write_digit_files


def main(argv: list[str] | None = None) -> int:
    """Write the example into the folder named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write into")
    parser.add_argument("--near-copies", type=int, default=0, help="near copies to add (resized, re-encoded, shifted)")
    parser.add_argument("--noise", type=float, default=0.2, help="share of labels flipped (default 0.2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    files = write_digit_files(args.out, near_copies=args.near_copies, seed=args.seed)
    labels = files.manifest["label"].astype(int).to_numpy()
    noisy = flip_labels(labels, args.noise, 10, np.random.default_rng(args.seed))
    files.manifest.assign(label=noisy.astype(str)).to_csv(files.manifest_path, index=False)
    (args.out / "digits-files.toml").write_text(IMAGE_FILES_CONFIG, encoding="utf-8")
    print(f"wrote {len(files.manifest)} images under {args.out / 'images'}, {files.manifest_path} "
          f"({int((noisy != labels).sum())} labels flipped) and {args.out / 'digits-files.toml'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
