"""How many injected tag errors each ranking puts first: the engine's out-of-fold tag probabilities
(hgb+linear+knn mixed as mining mixes them) on a bundled tag set's noisy labels, ranked by cleanlab's
multi-label quality score (what the queue uses), the minimum per-tag self-confidence, the
log-likelihood ratio of the given set to the model's set, the per-tag rank, per-tag mixture weights,
and each member alone. Prints the errors among the first 3/4, 1 and 3/2 of a fifth of the rows
(the injected share), the per-tag self-confidence of wrong and right annotations, and the weights.

    PYTHONPATH=. python scripts/compare_tag_rankings.py SET SEED [MEMBERS]
"""
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warnings  # noqa: E402

from cleanlab.multilabel_classification.filter import find_label_issues  # noqa: E402
from cleanlab.multilabel_classification.rank import (  # noqa: E402
    get_label_quality_scores,
    get_label_quality_scores_per_class,
)
from scipy.stats import rankdata  # noqa: E402

from data_engine.mine.models import Schema, build_estimator, resolve_spec  # noqa: E402
from data_engine.tasks.multilabel_oof import out_of_fold_tag_probabilities  # noqa: E402
from data_engine.tasks.oof import mixture_weights  # noqa: E402
from tests import multilabel_support  # noqa: E402

warnings.filterwarnings("ignore")
name, seed = sys.argv[1], int(sys.argv[2])
members = sys.argv[3] if len(sys.argv) > 3 else "hgb+linear+knn"
data, _ = multilabel_support.bundled_tags(name, seed=seed)
tags = data.tags
features = [c for c in data.frame.columns if c not in ("id", "tags")]
X = data.frame[features]
ids = list(data.frame["id"])


def encode(rows: list) -> np.ndarray:
    return np.array([[t in r for t in tags] for r in rows], dtype=np.int8)


N = encode(list(data.frame["tags"]))
T = encode([data.truth[i] for i in ids])
schema = Schema.from_mapping({c: "numeric" for c in features})
estimators = {m: build_estimator(resolve_spec(m, "tabular", seed=0), schema) for m in members.split("+")}
res = out_of_fold_tag_probabilities(estimators, X, N, seed=0)
P = res.probs
is_error = (N != T).any(axis=1)
given = [list(np.flatnonzero(r)) for r in N]
per = get_label_quality_scores_per_class(given, P)


def per_tag_mix(member_probs: dict, Y: np.ndarray) -> tuple[np.ndarray, list]:
    """Each tag's own convex member weights (mining uses one set of weights for every tag)."""
    stacked = np.stack(list(member_probs.values()))
    mixed, weights = np.empty(Y.shape), []
    for k in range(Y.shape[1]):
        w = mixture_weights(np.stack([1 - stacked[:, :, k], stacked[:, :, k]], axis=-1), Y[:, k].astype(np.int64))
        weights.append([round(float(x), 2) for x in w])
        mixed[:, k] = np.tensordot(w, stacked[:, :, k], axes=1)
    return mixed, weights


P_tag, W_tag = per_tag_mix(res.member_probs, N)
rankings = {
    "cleanlab_ema": get_label_quality_scores(given, P),
    "min_sc": per.min(1),
    "loglik_ratio": -np.sum(np.log(np.maximum(P, 1 - P) + 1e-12) - np.log(per + 1e-12), 1),
    "min_tag_rank": np.column_stack([rankdata(per[:, k]) / len(per) for k in range(per.shape[1])]).min(1),
    "pertag_ema": get_label_quality_scores(given, P_tag),
    "pertag_min": get_label_quality_scores_per_class(given, P_tag).min(1),
}
rankings |= {"only_" + m: get_label_quality_scores_per_class(given, p).min(1) for m, p in res.member_probs.items()}
flags = np.asarray(find_label_issues(given, P, filter_by="prune_by_noise_rate", n_jobs=1), bool)
out = {"set": name, "seed": seed, "n": len(N), "errors": int(is_error.sum()), "flags": int(flags.sum()),
       "flag_precision": round(float(is_error[flags].mean()), 3) if flags.any() else None,
       "weights": res.weights, "per_tag_weights": W_tag}
fifth = len(N) // 5
for label, score in rankings.items():
    order = np.argsort(score, kind="stable")
    out[label] = [int(is_error[order[:k]].sum()) for k in (fifth * 3 // 4, fifth, fifth * 3 // 2)]
wrong = N != T
out["per_tag"] = {t: {"errors": int(wrong[:, k].sum()), "positives": int(T[:, k].sum()),
                      "self_confidence_wrong": round(float(per[wrong[:, k], k].mean()), 2) if wrong[:, k].any() else None,
                      "self_confidence_right": round(float(per[~wrong[:, k], k].mean()), 2)} for k, t in enumerate(tags)}
print(json.dumps(out))
