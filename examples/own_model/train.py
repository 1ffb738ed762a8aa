"""An example trainer for the data engine's `[model] trainer = "command"` contract (docs/own-model.md).

    python train.py fit --train TRAIN.parquet --manifest MANIFEST.json --out MODEL_DIR
    python train.py predict --model MODEL_DIR --input INPUT.parquet --out PRED.parquet
    python train.py serve --model MODEL_DIR     (requests on stdin, one JSON line each)

A scikit-learn MLP on the numeric input columns (standardised; missing values filled with the
training median); for tag sets (manifest task "multilabel") the same MLP with one sigmoid output
per tag; for numbers (manifest task "regression") a ridge regression. It runs in its own virtual
environment (setup.sh) and needs only pandas, pyarrow, scikit-learn and joblib; when launched from
Dagster it reports its training accuracy through dagster-pipes if that package is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import pandas as pd
from sklearn.linear_model import Ridge
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MultiLabelBinarizer, StandardScaler


def _numeric(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].apply(pd.to_numeric, errors="coerce")


def _train(frame: pd.DataFrame, columns: list[str], task: str = "classification", tags: list[str] | None = None) -> dict:
    X = _numeric(frame, columns)
    medians = X.median()
    if task == "regression":  # numbers: ridge regression on the standardised columns
        model = make_pipeline(StandardScaler(), Ridge(alpha=1.0))
        model.fit(X.fillna(medians), frame["label"].astype(float))
    else:
        model = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0))
        model.fit(X.fillna(medians), _targets(frame, task, tags))
    return {"model": model, "columns": columns, "medians": medians, "task": task, "tags": tags}


def _targets(frame: pd.DataFrame, task: str, tags: list[str] | None) -> object:
    """Class names, or for tag sets (each label a list of tags) a 0/1 matrix with one column per tag."""
    if task == "multilabel":
        return MultiLabelBinarizer(classes=tags).fit_transform([list(t) for t in frame["label"]])
    return frame["label"].astype(str)


def _probabilities(saved: dict, frame: pd.DataFrame, classes: list[str] | None = None) -> pd.DataFrame:
    """example_id and one probability column per class (a class the model never saw: 0)."""
    X = _numeric(frame, saved["columns"]).fillna(saved["medians"])
    if saved.get("task") == "regression":  # numbers: example_id and prediction
        return pd.DataFrame({"example_id": frame["example_id"].astype(str).to_numpy(),
                             "prediction": saved["model"].predict(X)})
    if saved.get("task") == "multilabel":  # one probability per tag, each in [0, 1]
        names = saved["tags"]
    else:
        names = [str(c) for c in saved["model"].classes_]
    pred = pd.DataFrame(saved["model"].predict_proba(X), columns=names)
    if classes is not None:
        pred = pred.reindex(columns=classes, fill_value=0.0)
    pred.insert(0, "example_id", frame["example_id"].astype(str).to_numpy())
    return pred


def fit(train: Path, manifest: Path, out: Path) -> None:
    meta = json.loads(manifest.read_text())
    frame = pd.read_parquet(train)
    columns = [c for c in meta["feature_columns"] if pd.api.types.is_numeric_dtype(frame[c])]
    if not columns:
        sys.exit("this example reads numeric feature columns only")
    if meta.get("out_of_fold"):
        # Asked for out-of-fold predictions: each fold predicted by a model fitted on the other folds.
        spec = meta["out_of_fold"]
        parts = []
        for k in sorted(frame[spec["fold_column"]].unique()):
            held = frame[spec["fold_column"]] == k
            parts.append(_probabilities(_train(frame[~held], columns, meta["task"], meta.get("classes")),
                                        frame[held], meta.get("classes")))
        pd.concat(parts).to_parquet(spec["path"], index=False)
    saved = _train(frame, columns, meta["task"], meta.get("classes"))
    joblib.dump(saved, out / "model.joblib")
    X = _numeric(frame, columns).fillna(saved["medians"])
    if meta["task"] == "regression":
        r2 = float(saved["model"].score(X, frame["label"].astype(float)))
        print(f"fitted a ridge regression on {len(frame)} rows, {len(columns)} columns; training R^2 {r2:.3f}",
              file=sys.stderr)
        _report({"train_rows": len(frame), "train_r2": r2})
        return
    # For tag sets: the share of rows whose whole tag set is right.
    accuracy = float(saved["model"].score(X, _targets(frame, meta["task"], meta.get("classes"))))
    print(f"fitted an MLP on {len(frame)} rows, {len(columns)} columns; training accuracy {accuracy:.3f}",
          file=sys.stderr)
    _report({"train_rows": len(frame), "train_accuracy": accuracy})


def predict(model_dir: Path, input_path: Path, out: Path) -> None:
    _predict(joblib.load(model_dir / "model.joblib"), input_path, out)


def serve(model_dir: Path) -> None:
    """The long-lived worker `data-engine serve` talks to: load once, answer one request per line."""
    saved = joblib.load(model_dir / "model.joblib")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        try:
            _predict(saved, Path(request["input"]), Path(request["out"]))
            reply = {"id": request["id"]}
        except Exception as exc:  # answer the request with the reason; keep serving
            reply = {"id": request["id"], "error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(reply), flush=True)


def _predict(saved: dict, input_path: Path, out: Path) -> None:
    _probabilities(saved, pd.read_parquet(input_path)).to_parquet(out, index=False)


def _report(metrics: dict) -> None:
    """Send metrics to Dagster when launched through Dagster Pipes; do nothing otherwise."""
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes
    except ImportError:
        return
    if PipesEnvVarParamsLoader().is_dagster_pipes_process():
        with open_dagster_pipes() as pipes:
            pipes.log.info(f"trainer metrics: {metrics}")
            pipes.report_asset_materialization(metadata=metrics)


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--train", type=Path, required=True)
    f.add_argument("--manifest", type=Path, required=True)
    f.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("predict")
    p.add_argument("--model", type=Path, required=True)
    p.add_argument("--input", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("serve")
    s.add_argument("--model", type=Path, required=True)
    args = parser.parse_args()
    if args.cmd == "fit":
        fit(args.train, args.manifest, args.out)
    elif args.cmd == "serve":
        serve(args.model)
    else:
        predict(args.model, args.input, args.out)


if __name__ == "__main__":
    main()
