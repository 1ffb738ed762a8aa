"""Why fixing nine tenths of the wrong tag sets closes less of the held-out gap, on any tags set
(text too: the rows go through a home's ingest and `demo-loop`'s comparison inputs, e5 vectors and
all), without the loop. Label recipes are scored as `demo-loop`'s comparison scores them (the
served model's default members, equal weights; every training example by 5-fold cross-validation,
repeated below 1,000 training rows; gold rows by the model on every training row), per example, so
that the gap's paired standard error and the fold split's own spread can be given.

    PYTHONPATH=. python scripts/diagnose_tags_fit.py SET SEED [--share 0.89] [--splits 5] [--recipes A,B]
        [--nested A,B] [--rankings [--orders A,B] [--families A,B]] [--serve MEMBER]

``--serve MEMBER``: one registered member alone (one-vs-rest, calibrated, as for ``--families``)
replaces the served model in every fit, so parts (a) and (b) are that member's.

Prints one JSON line:
- (a) fit noise: the noisy and true labels scored under ``--splits`` fold shuffles (seeds 0..);
  the spread of the true labels' figure between shuffles and of the gap itself;
- (b) ``--rankings``: each queue order (below) over the training rows, out-of-fold on the noisy
  labels; the injected errors among its first 1.5 x (injected errors) rows (what the issue's review
  budget buys) fixed, and the share of the gap that closes (only parts (a) and (b) run);
  ``--orders`` only the named orders (the random ones as ``random_order_0,random_order_1``);
  ``--families`` registered members (``served``: the served model itself), each fitted alone on the
  same folds of split 0 (one-vs-rest, calibrated, as the engine adapts a member for tags), and the
  orders their doubt gives: each one's cleanlab quality score (``family_X``), cleanlab's score on
  their averaged probabilities (``families_mean_probs``), the mean of their score ranks
  (``families_rank_mean``) and the lowest of their scores (``families_min``: an error any of them
  doubts); with ``served`` among three or more, also the served model paired with each other one
  (``served_X_min``, ``served_X_rank_mean``) and with the one whose probabilities fit the given
  labels best (``served_best_min``, ``served_best_rank_mean``). Every order's ``found`` is printed first (no refit); its ``share`` is computed only
  where it finds clearly more errors than the queue's order (``--clear`` more, default the larger
  of 2 and 1 % of the errors), or where ``--orders`` names it;
- (c) which errors: ``share`` of the errors fixed at random (3 draws), the ``share`` the
  out-of-fold model doubts most (cleanlab's multi-label quality score, lowest first: what a queue
  picks) and the ``share`` it doubts least; share of the gap closed by each;
- (d) the prediction rule: every recipe also decided with per-tag thresholds chosen on the
  training rows' out-of-fold probabilities against the recipe's own labels (the threshold that
  maximises that tag's accuracy: leaky, the evaluated rows' labels pick it), beside the 0.5 rule;
  ``--nested`` the named recipes with thresholds chosen inside each fit on its own rows' inner
  5-fold out-of-fold probabilities (what TunedThresholdClassifierCV does per tag).
"""
import json
import sys
import tempfile
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cleanlab.multilabel_classification.rank import get_label_quality_scores  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from data_engine.demo import comparison  # noqa: E402
from data_engine.demo.loop import ingest_landing, landed_labels  # noqa: E402
from data_engine.mine.models import Schema, build_estimator, build_members  # noqa: E402
from data_engine.review.oracle import oracle_path, read_oracle  # noqa: E402
from data_engine.ship.fitting import limited_threads  # noqa: E402
from data_engine.tasks import task_for, tagsets  # noqa: E402
from tests import multilabel_support  # noqa: E402
from tests.homes import make_home  # noqa: E402

warnings.filterwarnings("ignore")
flags = {"--rankings"}  # options without a value
args = [a for a in sys.argv[1:] if not a.startswith("--")]
opt = {sys.argv[i][2:]: sys.argv[i + 1] for i in range(1, len(sys.argv) - 1)
       if sys.argv[i].startswith("--") and sys.argv[i] not in flags}
opt |= {f[2:]: "" for f in flags if f in sys.argv}
for v in opt.values():
    if v:
        args.remove(v)
name, seed = args[0], int(args[1])
share = float(opt.get("share", 0.89))
n_splits = int(opt.get("splits", 5))
data_, gold_ = multilabel_support.bundled_tags(name, seed=seed)
features = [c for c in data_.frame.columns if c not in ("id", "tags")]
inputs = ({"modality": "text", "text_column": "sentence", "feature_columns": []} if features == ["sentence"]
          else {"modality": "tabular", "feature_columns": features})
config = {"dataset": {"name": name, **inputs, "task": "multilabel", "id_column": "id",
                      "label_column": "tags", "classes": data_.tags},
          "mining": {"n_jobs": 1}, "review": {"url": "http://127.0.0.1:9"}}
home = make_home(Path(tempfile.mkdtemp()) / f"{name}{seed}", config)
data_.write(home.root)
gold_.write_gold(home.root)
task = task_for(home.config.dataset)
ingest_landing(home)
oracle_map = read_oracle(oracle_path(home), task)
oracle = pd.DataFrame({"example_id": list(oracle_map), "label": list(oracle_map.values())}, dtype=str)
held = comparison.load_held_out(home, oracle)
tags = list(data_.tags)
n_train = int((~held.is_gold).sum())
_, spec, _ = comparison.served_model(home, n_train)
est = task.members_for({"served": build_estimator(spec, Schema.from_mapping(held.schema))})["served"]
if opt.get("serve"):  # one member alone in place of the served mixture, for every fit below
    est = task.members_for(build_members(replace(spec, members=(opt["serve"],)), Schema.from_mapping(held.schema)))[opt["serve"]]
T = task.encode(list(held.truth), tags)
landed = landed_labels(home).reindex(held.example_ids)
N = T.copy()
train = np.flatnonzero(~held.is_gold)
gold = np.flatnonzero(held.is_gold)
N[train] = task.encode([str(x) for x in landed.to_numpy()[train]], tags)
errors = train[(N[train] != T[train]).any(axis=1)]
k = int(round(share * len(errors)))
print(f"{name} {seed}: {spec.members}, {len(train)} train, {len(gold)} gold, {len(errors)} errors", file=sys.stderr)


def probabilities(Y: np.ndarray, split_seed: int, model=None, with_gold: bool = True) -> np.ndarray:
    """Per-tag probabilities (n, K) of every example by a model that never trained on it, labels ``Y``
    for the training rows (the comparison's splits: 5-fold over the training rows, gold by all).
    ``model``: another unfitted tags estimator than the served one; ``with_gold=False`` leaves the
    gold rows at 0 (a queue orders training rows only)."""
    model = est if model is None else model
    out = np.zeros(T.shape)
    with limited_threads():
        for fit, test in KFold(5, shuffle=True, random_state=split_seed).split(train):
            out[train[test]] = clone(model).fit(held.X.iloc[train[fit]], Y[train[fit]]).predict_proba(held.X.iloc[train[test]])
        if len(gold) and with_gold:
            out[gold] = clone(model).fit(held.X.iloc[train], Y[train]).predict_proba(held.X.iloc[gold])
    return out


def tuned(P: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Per-tag thresholds maximising the tag's accuracy against ``Y`` on the training rows' probabilities."""
    grid = np.linspace(0.05, 0.95, 91)
    return np.array([grid[np.argmax([((P[train, j] >= t) == Y[train, j]).mean() for t in grid])]
                     for j in range(P.shape[1])])


def nested(Y: np.ndarray, split_seed: int) -> np.ndarray:
    """0/1 decisions (n, K) with per-tag thresholds chosen inside each outer fit: on the fit rows'
    own inner 5-fold out-of-fold probabilities against ``Y`` (what scikit-learn's
    TunedThresholdClassifierCV does per tag), so no evaluated row's label picks its threshold."""
    out = np.zeros(T.shape, dtype=int)
    grid = np.linspace(0.05, 0.95, 91)

    def one(fit_rows: np.ndarray, test_rows: np.ndarray) -> None:
        inner = np.zeros((len(fit_rows), T.shape[1]))
        for a, b in KFold(5, shuffle=True, random_state=split_seed).split(fit_rows):
            inner[b] = clone(est).fit(held.X.iloc[fit_rows[a]], Y[fit_rows[a]]).predict_proba(held.X.iloc[fit_rows[b]])
        thr = np.array([grid[np.argmax([((inner[:, j] >= t) == Y[fit_rows, j]).mean() for t in grid])]
                        for j in range(T.shape[1])])
        P = clone(est).fit(held.X.iloc[fit_rows], Y[fit_rows]).predict_proba(held.X.iloc[test_rows])
        out[test_rows] = P >= thr

    with limited_threads():
        for fit, test in KFold(5, shuffle=True, random_state=split_seed).split(train):
            one(train[fit], train[test])
        if len(gold):
            one(train, gold)
    return out


def exact(P: np.ndarray, thr: np.ndarray | float = 0.5) -> np.ndarray:
    return ((P >= thr) == T).all(axis=1).astype(float)


def fixed(rows: np.ndarray) -> np.ndarray:
    Y = N.copy()
    Y[rows] = T[rows]
    return Y


out: dict = {"set": name, "seed": seed, "members": list(spec.members), "serve": opt.get("serve") or "served", "train": len(train), "gold": len(gold),
             "errors": len(errors), "fixed": k}
# (a) the fold split's spread, on the true and the noisy labels.
per_split = {"noisy": [], "clean": []}
P0 = {}
for s in range(n_splits):
    for label, Y in (("noisy", N), ("clean", T)):
        P = probabilities(Y, s)
        per_split[label].append(exact(P))
        if s == 0:
            P0[label] = P
    print(f"split {s} done", file=sys.stderr, flush=True)
em = {k_: np.array([e.mean() for e in v]) for k_, v in per_split.items()}
gaps = em["clean"] - em["noisy"]
d0 = per_split["clean"][0] - per_split["noisy"][0]
out["a_fit_noise"] = {
    "exact_clean_per_split": [round(x, 4) for x in em["clean"]],
    "exact_noisy_per_split": [round(x, 4) for x in em["noisy"]],
    "gap_per_split": [round(x, 4) for x in gaps],
    "clean_sd_between_splits": round(em["clean"].std(ddof=1), 4),
    "gap_sd_between_splits": round(gaps.std(ddof=1), 4),
    "gap_paired_se_split0": round(d0.std(ddof=1) / np.sqrt(len(d0)), 4),
    # Two fits of the true labels under two shuffles: examples whose exact match differs.
    "clean_split0_vs_1_examples_differ": int((per_split["clean"][0] != per_split["clean"][1]).sum()) if n_splits > 1 else None,
    "gap_examples_split0": int(round(d0.sum())),
}
# (c) which errors are fixed, and (d) the per-tag threshold rule, on split 0.
quality = get_label_quality_scores([list(np.flatnonzero(r)) for r in N[train]], P0["noisy"][train])
if "rankings" in opt:
    given, Pn, Nt = [list(np.flatnonzero(r)) for r in N[train]], P0["noisy"][train], N[train]
    suspicion = np.where(Nt == 1, 1 - Pn, Pn)  # per (example, tag): the model's doubt of the given bit
    rarity = 1 / np.maximum(Nt.mean(0), 1 / len(Nt))  # a rare tag's missed positive costs the most
    missing = np.where(Nt == 0, Pn, 0.0)
    spurious = np.where(Nt == 1, 1 - Pn, 0.0)
    order_by = {  # lower first
        "current_cleanlab_ema": quality,
        "cleanlab_softmin": get_label_quality_scores(given, Pn, aggregator_kwargs={"method": "softmin", "temperature": 0.1}),
        "min_self_confidence": np.where(Nt == 1, Pn, 1 - Pn).min(1),
        "cleanlab_normalized_margin": get_label_quality_scores(given, Pn, method="normalized_margin"),
        "least_doubted": -quality,
        "rarity_weighted": -(suspicion * rarity).max(1),
        "missing_first": -np.where(missing.max(1) > 0.5, 1 + missing.max(1), spurious.max(1)),
        "expected_flips": -suspicion.sum(1),
        # The number of tags the model's own 0.5 rule contradicts, most first; within a count, the
        # lowest per-tag self-confidence first. Meant to order as expected_flips where doubts are
        # near 0 or 1 and to ignore a weak model's diffuse doubt below 0.5 on right rows; on digits
        # few rows have two contradicted tags, so it picks as min_self_confidence (docs/mining.md).
        "contradicted_then_min": np.lexsort((np.where(Nt == 1, Pn, 1 - Pn).min(1), -(suspicion > 0.5).sum(1))).argsort(),
        # The model's probability of the whole given tag set (the product of the per-tag
        # self-confidences, as a sum of logs): one near-certain doubt dominates as in
        # min_self_confidence, several moderate doubts add up as in expected_flips, and diffuse
        # small doubts cost little (log(0.7) per tag against log(0.05) for one contradicted tag).
        "joint_self_confidence": np.log(np.clip(1 - suspicion, 1e-12, 1)).sum(1),
    }
    budget = min(len(train), int(round(1.5 * len(errors))))
    is_err = np.isin(train, errors)
    rng_b = np.random.default_rng(7)
    picks = {lab: train[np.argsort(sc, kind="stable")[:budget]] for lab, sc in order_by.items()}
    picks |= {f"random_order_{d}": rng_b.choice(train, budget, replace=False) for d in range(2)}
    ema_rows = picks["current_cleanlab_ema"]
    if opt.get("orders"):
        picks = {lab: rows for lab, rows in picks.items() if lab in opt["orders"].split(",")}
    refit = set(picks)  # --orders: always scored
    ema_found = int(np.isin(ema_rows, errors).sum())
    family_info: dict = {}
    if opt.get("families"):
        # Each family's own out-of-fold doubt on the noisy labels, same folds as the served model's.
        fams = opt["families"].split(",")
        others = tuple(m for m in fams if m != "served")
        built = task.members_for(build_members(replace(spec, members=others), Schema.from_mapping(held.schema))) if others else {}
        fam_q = {}
        for m in fams:
            Pm = P0["noisy"] if m == "served" else probabilities(N, 0, built[m], with_gold=False)
            fam_q[m] = (get_label_quality_scores(given, Pm[train]), Pm[train])
            print(f"family {m} fitted", file=sys.stderr, flush=True)
        fam_orders = {f"family_{m}": q for m, (q, _) in fam_q.items()}
        if len(fams) > 1:
            fam_orders |= {
                "families_mean_probs": get_label_quality_scores(given, np.mean([p for _, p in fam_q.values()], axis=0)),
                "families_rank_mean": np.mean([rankdata(q) for q, _ in fam_q.values()], axis=0),
                "families_min": np.min([q for q, _ in fam_q.values()], axis=0),
            }
        if "served" in fams and len(fams) > 2:  # the served model's doubt with each other one's
            for m in others:
                pair = [fam_q["served"][0], fam_q[m][0]]
                fam_orders |= {f"served_{m}_min": np.min(pair, axis=0),
                               f"served_{m}_rank_mean": np.mean([rankdata(q) for q in pair], axis=0)}
            # The other family that fits the given labels best (mean Bernoulli log-likelihood of its
            # out-of-fold probabilities): a rule that needs no true label to name the partner.
            loglik = {m: float(np.mean(np.log(np.clip(np.where(N[train] == 1, p, 1 - p), 1e-12, 1))))
                      for m, (_, p) in fam_q.items() if m != "served"}
            best = max(loglik, key=loglik.get)
            fam_orders |= {"served_best_min": fam_orders[f"served_{best}_min"],
                           "served_best_rank_mean": fam_orders[f"served_{best}_rank_mean"]}
            out["families_loglik"] = {m: round(v, 4) for m, v in loglik.items()} | {"best": best}
        clear = int(opt.get("clear", max(2, int(np.ceil(0.01 * len(errors))))))
        ema_left = np.setdiff1d(errors, ema_rows)
        for lab, sc in fam_orders.items():
            rows = train[np.argsort(sc, kind="stable")[:budget]]
            n_found = int(np.isin(rows, errors).sum())
            family_info[lab] = {"found": n_found, "of_errors_ema_leaves": int(np.isin(rows, ema_left).sum())}
            print(f"found {lab}: {n_found} (ema {ema_found}; {family_info[lab]['of_errors_ema_leaves']} of the "
                  f"{len(ema_left)} ema leaves)", file=sys.stderr, flush=True)
            picks[lab] = rows
            if n_found >= ema_found + clear or lab in opt.get("orders", "").split(","):
                refit.add(lab)
        out["families"] = {"members": fams, "clear": clear, "ema_found": ema_found,
                           "ema_leaves": len(ema_left)} | family_info
    sc_b = {"noisy": exact(P0["noisy"]), "clean": exact(P0["clean"])}
    # Per-bit accuracy beside exact match: on small sets exact match's gap is a few examples.
    hm = {"noisy": ((P0["noisy"] >= 0.5) == T).mean(), "clean": ((P0["clean"] >= 0.5) == T).mean()}
    found = {}
    for lab, rows in picks.items():
        hit = rows[np.isin(rows, errors)]
        found[lab] = len(hit)
        if lab not in refit:
            continue
        same = next((o for o in sc_b if o in picks and set(picks[o]) == set(rows)), None)
        if same is not None:  # the same rows picked: the same refit
            sc_b[lab], hm[lab] = sc_b[same], hm[same]
            continue
        Pf = probabilities(fixed(hit), 0)
        sc_b[lab], hm[lab] = exact(Pf), ((Pf >= 0.5) == T).mean()
        print(f"ranking {lab} done", file=sys.stderr, flush=True)
    gap_b = (sc_b["clean"] - sc_b["noisy"]).mean()
    gap_h = hm["clean"] - hm["noisy"]
    out["b_budget"] = {"budget": budget, "gap": round(gap_b, 4), "gap_bits": round(gap_h, 4)} | {
        lab: {"found": found[lab], "share": round((sc_b[lab] - sc_b["noisy"]).mean() / gap_b, 3) if gap_b and lab in sc_b else None,
              "share_bits": round((hm[lab] - hm["noisy"]) / gap_h, 3) if gap_h and lab in hm else None}
        for lab in picks}
    print(json.dumps(out))
    sys.exit(0)
pos = {r: i for i, r in enumerate(train)}
doubted = errors[np.argsort(quality[[pos[e] for e in errors]], kind="stable")]
rng = np.random.default_rng(123)
recipes = {"noisy": N, "clean": T} | {f"random_{d}": fixed(rng.choice(errors, k, replace=False)) for d in range(3)}
recipes |= {"most_doubted": fixed(doubted[:k]), "least_doubted": fixed(doubted[-k:])}
if "recipes" in opt:  # fewer recipes on a busy machine (noisy and clean always)
    recipes = {lab: Y for lab, Y in recipes.items() if lab in ("noisy", "clean") or lab in opt["recipes"].split(",")}
scores, scores_t = {}, {}
for label, Y in recipes.items():
    P = P0.get(label) if label in P0 else probabilities(Y, 0)
    scores[label] = exact(P)
    scores_t[label] = exact(P, tuned(P, Y))
    print(f"{label} done", file=sys.stderr, flush=True)
scores_n = {}
if "nested" in opt:
    for label in opt["nested"].split(","):
        scores_n[label] = (nested(recipes[label], 0) == T).all(axis=1).astype(float)
        print(f"nested {label} done", file=sys.stderr, flush=True)
for key, sc in (("c_which_errors", scores), ("d_tuned_thresholds_leaky", scores_t), ("d_nested_thresholds", scores_n)):
    if not sc:
        continue
    gap = (sc["clean"] - sc["noisy"]).mean()
    out[key] = {"gap": round(gap, 4)} | {lab: [round(v.mean(), 4), round((v - sc["noisy"]).mean() / gap, 3) if gap else None]
                                        for lab, v in sc.items()}
# Where the gap lives: examples whose exact match the true labels change, and how many carry an injected error.
changed = np.flatnonzero(scores["clean"] != scores["noisy"])
out["gap_examples"] = {"changed": len(changed), "won": int((scores["clean"] > scores["noisy"]).sum()),
                       "lost": int((scores["clean"] < scores["noisy"]).sum()),
                       "changed_with_error": int(np.isin(changed, errors).sum()),
                       "changed_gold": int(held.is_gold[changed].sum())}
left = doubted[k:]
out["left_by_most_doubted"] = {"errors_left": len(left), "left_rows_predicted_right_noisy": int(scores["noisy"][left].sum()),
                               "left_rows_predicted_right_clean": int(scores["clean"][left].sum())}
print(json.dumps(out))
