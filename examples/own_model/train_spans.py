"""An example trainer for spans ([dataset] task = "ner"), written from docs/own-model.md only.

A gazetteer: fit remembers every entity text of the training spans and how often each type was
given to it; predict finds those texts in a new text (longest first, whole words, no overlaps) and
answers each as a span of its most frequent type, scored by that type's share. Needs pandas and pyarrow.
"""
import argparse, json, re, sys
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd


def text_column(meta):
    return next(c for c, kind in meta["column_kinds"].items() if kind == "text")


def train(frame, column):
    seen = defaultdict(Counter)
    for text, label in zip(frame[column], frame["label"]):
        for s in json.loads(label):                # the stored span set: JSON text, character offsets
            seen[text[s["start"]:s["end"]]][s["label"]] += 1
    return {"column": column, "names": {name: dict(c) for name, c in seen.items()}}


def spans(saved, frame):
    names = sorted(saved["names"], key=len, reverse=True)
    rows = []
    for text in frame[saved["column"]].astype(str):
        taken, found = [False] * len(text), []
        for name in names:
            for m in re.finditer(r"(?<!\w)" + re.escape(name) + r"(?!\w)", text):
                if any(taken[m.start():m.end()]):
                    continue
                counts = saved["names"][name]
                label = max(sorted(counts), key=counts.get)
                found.append({"start": m.start(), "end": m.end(), "label": label,
                              "score": counts[label] / sum(counts.values())})
                taken[m.start():m.end()] = [True] * (m.end() - m.start())
        rows.append(json.dumps(sorted(found, key=lambda s: s["start"])))
    return pd.DataFrame({"example_id": frame["example_id"].astype(str), "spans": rows})


def fit(train_path, manifest, out):
    meta = json.loads(manifest.read_text())
    frame = pd.read_parquet(train_path)
    if meta.get("out_of_fold"):                    # only with [model] out_of_fold = "trainer"
        spec = meta["out_of_fold"]
        fold = frame[spec["fold_column"]]
        pd.concat([spans(train(frame[fold != k], text_column(meta)), frame[fold == k])
                   for k in sorted(fold.unique())]).to_parquet(spec["path"], index=False)
    (out / "gazetteer.json").write_text(json.dumps(train(frame, text_column(meta))))


def load(model_dir):
    return json.loads((model_dir / "gazetteer.json").read_text())


def serve(model_dir):
    saved = load(model_dir)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            spans(saved, pd.read_parquet(request["input"])).to_parquet(request["out"], index=False)
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
else: spans(load(args.model), pd.read_parquet(args.input)).to_parquet(args.out, index=False)
