"""An example trainer for boxes ([dataset] task = "detection"), written from docs/own-model.md only.

A rule proposes the boxes: each connected blob of pixels that differ from the image's border colour
is one object (scipy.ndimage). A logistic regression learns each class from two numbers of the
given boxes' crops (the share of ink pixels, and whether the centre pixel is ink) and scores each
proposal. It works on drawn scenes (shapes apart on a plain background), not on photographs.
Needs numpy, pandas, pyarrow, Pillow, scipy and scikit-learn.
"""
import argparse, json, sys
from pathlib import Path

import joblib, numpy as np, pandas as pd
from PIL import Image
from scipy import ndimage
from sklearn.linear_model import LogisticRegression


def ink(path):
    img = np.asarray(Image.open(path).convert("RGB"), dtype=np.int16)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return np.abs(img - colours[counts.argmax()]).max(axis=2) > 40


def features(mask, x, y, w, h):
    crop = mask[int(y):int(y + h), int(x):int(x + w)]
    if crop.size == 0:
        return [0.0, 0.0]
    return [float(crop.mean()), float(crop[crop.shape[0] // 2, crop.shape[1] // 2])]


def proposals(mask):
    blobs, _ = ndimage.label(ndimage.binary_closing(mask, np.ones((3, 3))))
    return [(s[1].start, s[0].start, s[1].stop - s[1].start, s[0].stop - s[0].start)
            for s in ndimage.find_objects(blobs) if (s[0].stop - s[0].start) * (s[1].stop - s[1].start) >= 16]


def train(frame, image_column, classes):
    X, y = [], []
    for path, label in zip(frame[image_column], frame["label"]):
        mask = ink(path)
        for b in json.loads(label):                # the stored box set: JSON text, pixels
            X.append(features(mask, b["x"], b["y"], b["w"], b["h"]))
            y.append(b["label"])
    return {"model": LogisticRegression(C=100.0, max_iter=1000).fit(np.array(X), np.array(y)), "image_column": image_column}


def boxes(saved, frame):
    model, rows = saved["model"], []
    for path in frame[saved["image_column"]]:
        mask, found = ink(path), []
        for x, y, w, h in proposals(mask):
            p = model.predict_proba(np.array([features(mask, x, y, w, h)]))[0]
            k = int(p.argmax())
            found.append({"label": str(model.classes_[k]), "x": float(x), "y": float(y), "w": float(w),
                          "h": float(h), "score": float(p[k])})
        rows.append(json.dumps(found))             # JSON text; a Parquet list of structs works too
    return pd.DataFrame({"example_id": frame["example_id"].astype(str), "boxes": rows})


def fit(train_path, manifest, out):
    meta = json.loads(manifest.read_text())
    image_column = next(c for c, kind in meta["column_kinds"].items() if kind == "image")
    frame = pd.read_parquet(train_path)
    if meta.get("out_of_fold"):                    # only with [model] out_of_fold = "trainer"
        spec = meta["out_of_fold"]
        fold = frame[spec["fold_column"]]
        pd.concat([boxes(train(frame[fold != k], image_column, meta["classes"]), frame[fold == k])
                   for k in sorted(fold.unique())]).to_parquet(spec["path"], index=False)
    joblib.dump(train(frame, image_column, meta["classes"]), out / "model.joblib")


def serve(model_dir):
    saved = joblib.load(model_dir / "model.joblib")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            boxes(saved, pd.read_parquet(request["input"])).to_parquet(request["out"], index=False)
            print(json.dumps({"id": request["id"]}), flush=True)
        except Exception as exc:
            print(json.dumps({"id": request["id"], "error": f"{type(exc).__name__}: {exc}"}), flush=True)


parser = argparse.ArgumentParser()
sub = parser.add_subparsers(dest="cmd", required=True)
f, p, s = sub.add_parser("fit"), sub.add_parser("predict"), sub.add_parser("serve")
for a in ("--train", "--manifest", "--out"): f.add_argument(a, type=Path, required=True)
for a in ("--model", "--input", "--out"): p.add_argument(a, type=Path, required=True)
s.add_argument("--model", type=Path, required=True)
args = parser.parse_args()
if args.cmd == "fit": fit(args.train, args.manifest, args.out)
elif args.cmd == "serve": serve(args.model)
else: boxes(joblib.load(args.model / "model.joblib"), pd.read_parquet(args.input)).to_parquet(args.out, index=False)
