"""Why fixing most wrong tag sets closes less of the held-out gap: the held-out exact match and
per-tag accuracy of the served model's members (default hgb+linear+knn, equal weights) trained on
label recipes that fix chosen subsets of the injected errors, without the loop (no Label Studio,
no mining runs), with the paired standard error of the noisy-to-clean gap.

    PYTHONPATH=. python scripts/diagnose_tags_gap.py SET SEED [MEMBERS] [--share 0.76] [--gap-only]

Recipes: the labels as landed, the true labels, ``share`` of the errors fixed at random (three
draws), the ``share`` the out-of-fold model doubts most fixed (as a queue would pick them:
cleanlab's multi-label quality score on the engine's out-of-fold probabilities, lowest first), and
the ``share`` it doubts least fixed. Each is measured as ``demo-loop``'s comparison measures: every
training example by 5-fold cross-validation repeated over 5 shuffles, the gold rows by the model on
every training row (``--gap-only``: the first two recipes alone). The gap's standard error is that of the per-example paired difference (178
examples on wine), which the share of the gap closed inherits.
"""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cleanlab.multilabel_classification.rank import get_label_quality_scores  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from data_engine.mine.models import Schema, build_estimator, resolve_spec  # noqa: E402
from data_engine.tasks.multilabel import Multilabel  # noqa: E402
from data_engine.tasks.multilabel_oof import out_of_fold_tag_probabilities  # noqa: E402
from data_engine.tasks.oof import single_threaded  # noqa: E402
from tests import multilabel_support  # noqa: E402

warnings.filterwarnings("ignore")
args = [a for a in sys.argv[1:] if not a.startswith("--")]
gap_only = "--gap-only" in sys.argv
share = float(sys.argv[sys.argv.index("--share") + 1]) if "--share" in sys.argv else 0.76
if "--share" in sys.argv:
    args.remove(sys.argv[sys.argv.index("--share") + 1])
name, seed = args[0], int(args[1])
members = args[2] if len(args) > 2 else "hgb+linear+knn"
data, gold = multilabel_support.bundled_tags(name, seed=seed)
tags = data.tags
features = [c for c in data.frame.columns if c not in ("id", "tags")]
X = pd.concat([data.frame[features], gold.frame[features]], ignore_index=True)
n_train = len(data.frame)


def encode(rows: list) -> np.ndarray:
    return np.array([[t in r for t in tags] for r in rows], dtype=np.int8)


T = encode([data.truth[i] for i in data.frame["id"]] + [gold.truth[i] for i in gold.frame["id"]])
N = encode(list(data.frame["tags"]))
truth_train = T[:n_train]
schema = Schema.from_mapping({c: "numeric" for c in features})
model = Multilabel().members_for({"served": build_estimator(resolve_spec(members, "tabular", seed=0), schema)})["served"]
errors = np.flatnonzero((N != truth_train).any(axis=1))
k = int(round(share * len(errors)))


def held_out(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per example (all rows): exact match and tag accuracy, each the mean over the 5 repeats."""
    exact, tag_acc = np.zeros(len(X)), np.zeros(len(X))
    train = np.arange(n_train)
    pred = np.asarray(clone(model).fit(X.iloc[train], Y).predict(X.iloc[n_train:]))
    exact[n_train:], tag_acc[n_train:] = (pred == T[n_train:]).all(1), (pred == T[n_train:]).mean(1)
    for r in range(5):
        for fit, test in KFold(5, shuffle=True, random_state=r).split(train):
            pred = np.asarray(clone(model).fit(X.iloc[fit], Y[fit]).predict(X.iloc[test]))
            exact[test] += (pred == T[test]).all(1) / 5
            tag_acc[test] += (pred == T[test]).mean(1) / 5
    return exact, tag_acc


def fixed(rows: np.ndarray) -> np.ndarray:
    Y = N.copy()
    Y[rows] = truth_train[rows]
    return Y


members_est = {m: build_estimator(resolve_spec(m, "tabular", seed=0), schema) for m in members.split("+")}
probs = out_of_fold_tag_probabilities(members_est, X.iloc[:n_train], N, seed=0).probs
quality = get_label_quality_scores([list(np.flatnonzero(r)) for r in N], probs)
doubted = errors[np.argsort(quality[errors], kind="stable")]
rng = np.random.default_rng(123)
recipes = {"noisy": N, "clean": truth_train}
recipes |= {} if gap_only else {f"random_{d}": fixed(rng.choice(errors, k, replace=False)) for d in range(3)}
recipes |= {} if gap_only else {"most_doubted": fixed(doubted[:k]), "least_doubted": fixed(doubted[-k:])}
scores = {}
for label, Y in recipes.items():
    # One OpenMP thread: gradient boosting's threads spin on a busy machine (a run took 45 minutes
    # without the cap, 5 with it).
    with single_threaded():
        scores[label] = held_out(Y)
    print(label, "done", file=sys.stderr, flush=True)
out = {"set": name, "seed": seed, "members": members, "errors": len(errors), "fixed": k}
for j, metric in enumerate(("exact_match", "tag_accuracy")):
    gap = scores["clean"][j] - scores["noisy"][j]
    out[metric] = {"gap": round(gap.mean(), 4), "gap_se": round(gap.std(ddof=1) / np.sqrt(len(gap)), 4)}
    for label in recipes:
        gain = (scores[label][j] - scores["noisy"][j]).mean()
        out[metric][label] = [round(scores[label][j].mean(), 4), round(gain / gap.mean(), 3) if gap.mean() else None]
print(json.dumps(out))
