"""Discovered weak slices: groups of labeled examples where the model's out-of-fold accuracy is far
below the rest, named by the input columns that set them apart.

The idea is cleanlab's ``underperforming_group`` issue (clusters of the data where the model does
worse), which only reports the worst cluster's score ratio, without a test, and reads no column
names; so this module adds what it lacks:

1. **Candidates.** k-means clusters (scikit-learn ``KMeans``; ``MiniBatchKMeans`` above
   :data:`MINIBATCH_ROWS` rows) of the run's embedding (the stored per-row embedding, else the
   members' dense feature space, :func:`data_engine.mine.selection.features.selection_embedding`)
   at a few resolutions (:data:`CLUSTER_COUNTS`; fitted on a sample of :data:`FIT_ROWS` rows, then
   every row assigned; above ``selection.features.SPACE_FIT_ROWS`` rows the feature space is fitted
   on a seeded sample too and computed block by block, never for all rows at once, because the
   clusters need only their centres fitted and every row assigned once); and, where there are named numeric or categorical
   columns, the nodes of a shallow decision tree fitted to the out-of-fold errors on half of the
   rows (an "error tree", the weak-segment search of SliceFinder, Chung et al. 2019, and of
   Deepchecks' weak-segments check), tested on the other half only (an honest split: a node chosen
   for its errors on the rows it is tested on would always look weak).
2. **Test.** Per candidate of at least :data:`MIN_SLICE` examples (and at most :data:`MAX_SHARE`
   of them), the one-sided Fisher exact test (scipy ``fisher_exact``, alternative ``less``) that
   the odds of a right prediction are lower inside than outside; the p-values of all candidates
   are adjusted together by Benjamini-Hochberg (scipy ``false_discovery_control``). A slice is a
   candidate with adjusted p < :data:`ALPHA` and accuracy at least :data:`MIN_GAP` below the rest
   (the gap, like the p-value, on the rows the test read). Overlapping slices (more than
   :data:`MAX_OVERLAP` of the smaller one inside the other) keep the one with the lowest p-value.
3. **Description.** A cluster is described by a shallow ``DecisionTreeClassifier`` (slice against
   the rest, balanced classes) on the named columns the run did not name identifier, shortcut or
   useless (:data:`NOT_IN_CLUSTER_RULES`; the error tree leaves out :data:`NOT_IN_RULES`), its best
   leaf a rule such as ``x3 > 2.1 and plan = "basic"`` with its precision (share of the rule's rows
   in the cluster) and coverage (share of the cluster it selects). Below :data:`MIN_RULE_PRECISION`
   or :data:`MIN_RULE_COVERAGE` the cluster has no rule (the one tried is in its definition): like a
   slice without named columns (text, images) it is described by its most common classes and a few
   example ids, and defined by its nearest k-means centre in the stored embedding (else not gated).

A slice's ``n``, ``accuracy`` and ``rest_accuracy`` are over every labeled example (a tree node's
include the half that chose it, so they can look a little worse than its test saw).

"Right" is the task's per-example figure (:meth:`data_engine.tasks.Task.example_correct`: the top
class for classes, exact match for tags, an error at most the median for numbers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from data_engine.mine.slice_rules import (MIN_RULE_COVERAGE, MIN_RULE_PRECISION, NOT_IN_CLUSTER_RULES, NOT_IN_RULES,
                                          Encoder, cluster_rule, conditions_mask, conditions_text, node_rules)

if TYPE_CHECKING:
    from data_engine.mine.selection.features import RowSpace

# Fewer labeled examples than this: no slices are looked for.
MIN_ROWS = 60
# The smallest slice tested (examples), and the largest share of the labeled examples it may hold.
MIN_SLICE = 20
MAX_SHARE = 0.5
# k-means resolutions: clusters per run (each capped so an average cluster keeps MIN_SLICE rows).
CLUSTER_COUNTS = (4, 8, 16)
MINIBATCH_ROWS = 20_000
# Rows the clusters and trees are fitted on at most (a random sample; every row is then assigned).
FIT_ROWS = 50_000
# Depth of the error tree (the tree that describes a cluster: data_engine.mine.slice_rules).
ERROR_TREE_DEPTH = 3
ALPHA = 0.05
# The smallest accuracy gap (rest minus slice) reported: a significant but tiny gap is not a weak slice.
MIN_GAP = 0.10
MAX_OVERLAP = 0.5
MAX_SLICES = 5
# Unlabeled rows placed in slices at most (a random sample; the queue's boost picks among them).
MAX_UNLABELED = 10_000
# The column kinds rules read.
TREE_KINDS = ("numeric", "categorical")
# Example ids shown in a description without named columns.
EXAMPLE_IDS = 3


# The keys of one slice as ``mine --json`` and ``status --json`` give it.
SLICE_KEYS = ("name", "definition", "n", "accuracy", "rest_accuracy", "p_value", "rule_precision", "rule_coverage")


@dataclass
class WeakSlice:
    """One discovered slice.

    ``members``: indices into the labeled rows (shape (n,)); ``unlabeled``: (N_unlabeled,) bool, the
    unlabeled rows in it; ``conditions``: the rule (dicts ``column``, ``op`` one of ``<=``, ``>``,
    ``==``, ``!=``, ``value``) or None; ``centroids``/``cluster``: the k-means centres (k, D) of
    the stored embedding named ``embedding`` and the slice's index, where it has no rule.
    ``rule_precision``/``rule_coverage``: the rule against the cluster it describes (the share of the
    rule's rows in the cluster, the share of the cluster it selects; 1 for a tree node, whose rule is
    the slice; None without a rule).
    """

    name: str
    definition: str
    n: int
    accuracy: float
    rest_accuracy: float
    p_value: float
    source: str
    members: np.ndarray
    unlabeled: np.ndarray
    conditions: list[dict[str, Any]] | None = None
    centroids: np.ndarray | None = None
    cluster: int | None = None
    embedding: str | None = None
    rule_precision: float | None = None
    rule_coverage: float | None = None

    def record(self) -> dict[str, Any]:
        """What ``mine --json`` gives per slice: ``name``, ``definition``, ``n``, ``accuracy``,
        ``rest_accuracy`` (shares in [0, 1]), ``p_value`` (adjusted), ``rule_precision`` and
        ``rule_coverage`` (shares in [0, 1], None without a rule)."""
        def share(x: float | None) -> float | None:
            return None if x is None else round(float(x), 4)

        return {"name": self.name, "definition": self.definition, "n": int(self.n),
                "accuracy": round(float(self.accuracy), 4), "rest_accuracy": round(float(self.rest_accuracy), 4),
                "p_value": float(f"{self.p_value:.4g}"), "rule_precision": share(self.rule_precision),
                "rule_coverage": share(self.rule_coverage)}

    def row(self) -> dict[str, Any]:
        """The ``discovered_slices`` row (without the run id)."""
        return {**self.record(), "source": self.source,
                "conditions": json.dumps(self.conditions) if self.conditions else None,
                "embedding": self.embedding,
                "centroids": json.dumps(np.round(self.centroids, 6).tolist()) if self.centroids is not None else None,
                "cluster": self.cluster}


@dataclass
class SliceReport:
    """What the search found: ``slices`` (best first) and ``summary`` (candidates tested, why skipped)."""

    slices: list[WeakSlice] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        """:meth:`WeakSlice.record` of each slice."""
        return [s.record() for s in self.slices]

    def unlabeled_members(self, n_unlabeled: int) -> np.ndarray:
        """(n_unlabeled,) bool: unlabeled rows in any slice."""
        out = np.zeros(n_unlabeled, dtype=bool)
        for s in self.slices:
            out |= s.unlabeled
        return out


@dataclass
class _Candidate:
    source: str
    members: np.ndarray          # (n,) bool over labeled rows
    unlabeled: np.ndarray        # (N_unlabeled,) bool
    tested: np.ndarray           # (n,) bool: rows the test reads (all, or the held-out half)
    conditions: list[dict[str, Any]] | None = None
    k: int | None = None
    cluster: int | None = None
    centroids: np.ndarray | None = None
    p: float = 1.0


def find_weak_slices(frame: pd.DataFrame, schema: Mapping[str, str], correct: np.ndarray,
                     vectors: np.ndarray | RowSpace, *,
                     unlabeled: pd.DataFrame | None = None, unlabeled_vectors: np.ndarray | None = None,
                     given: Sequence[str] | None = None, ids: Sequence[str] | None = None,
                     embedding: str | None = None, seed: int = 0, adjust: bool = True,
                     findings: Mapping[str, str] | None = None) -> SliceReport:
    """Find the weak slices of n labeled examples (see the module docstring).

    ``frame``: the labeled rows (n) with the input columns of ``schema`` (name -> kind; the numeric
    and categorical ones describe slices); ``correct``: (n,) bool, whether each out-of-fold
    prediction is right; ``vectors``: (n, D) the space clusters are found in (or a
    :class:`~data_engine.mine.selection.features.RowSpace` of it, read block by block), ``unlabeled_vectors``
    (m, D) the unlabeled rows ``unlabeled`` (m) in the same space (to say which are in a slice);
    ``given``: the n given labels as text and ``ids`` the n example ids (a description without named
    columns); ``embedding``: the name of the stored embedding ``vectors`` are, None when they are a
    space fitted for this run (then no slice is defined by centroids). ``adjust=False`` leaves the
    p-values unadjusted (the benchmark's comparison; never in a mining run). ``findings``: the run's
    column findings (column -> ``identifier``, ``shortcut``, ``useless`` ..., from
    :func:`data_engine.mine.columns.column_issues`) that keep columns out of rules; those left out are
    ``summary["not_in_cluster_rules"]``. Never raises for small or uniform data: ``summary["skipped"]``
    says why nothing was looked for.
    """
    correct = np.asarray(correct, dtype=bool)
    n = len(correct)
    m = 0 if unlabeled_vectors is None else len(unlabeled_vectors)
    if n < MIN_ROWS:
        return SliceReport(summary={"skipped": f"fewer than {MIN_ROWS} labeled examples"})
    if correct.all() or not correct.any():
        return SliceReport(summary={"skipped": "every out-of-fold prediction is " + ("right" if correct.all() else "wrong")})
    rng = np.random.default_rng(seed)
    findings = dict(findings or {})
    named = [c for c, kind in schema.items() if kind in TREE_KINDS and c in frame.columns and findings.get(c) not in NOT_IN_RULES]
    coder = Encoder(frame, schema, named)
    X = coder.encode(frame) if named else None
    Xu = coder.encode(unlabeled) if named and unlabeled is not None and len(unlabeled) else None
    from data_engine.mine.selection.features import RowSpace

    space = vectors if isinstance(vectors, RowSpace) else np.asarray(vectors, dtype=np.float64)
    candidates = _cluster_candidates(space, unlabeled_vectors, n, m, rng, seed)
    if X is not None:
        candidates += _tree_candidates(X, Xu, coder, correct, m, rng, seed)
    tested = _test(candidates, correct, adjust)
    slices = _select(tested, correct)
    left_out = {c: f for c, f in findings.items() if f in NOT_IN_CLUSTER_RULES and schema.get(c) in TREE_KINDS}
    described = (None, coder)
    if X is not None and any(c.conditions is None for c in slices):  # the columns a cluster's rule may read
        sub, keep = coder.without(set(left_out))
        described = (X if len(keep) == X.shape[1] else X[:, keep], sub)
    found = [_describe(c, i, correct, *described, given, ids, embedding, seed) for i, c in enumerate(slices, start=1)]
    return SliceReport(found, {"candidates": len(tested), "named_columns": len(named), "alpha": ALPHA,
                               "min_gap": MIN_GAP, "min_slice": MIN_SLICE, "min_rule_precision": MIN_RULE_PRECISION,
                               "min_rule_coverage": MIN_RULE_COVERAGE, "not_in_cluster_rules": left_out})


def _kmeans(k: int, n: int, seed: int) -> Any:
    from sklearn.cluster import KMeans, MiniBatchKMeans

    if n > MINIBATCH_ROWS:
        return MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    return KMeans(n_clusters=k, random_state=seed, n_init=2)


def _cluster_candidates(V: np.ndarray | RowSpace, Vu: np.ndarray | None, n: int, m: int, rng: np.random.Generator,
                        seed: int) -> list[_Candidate]:
    """Every cluster of every resolution in :data:`CLUSTER_COUNTS` (an average cluster of at least
    :data:`MIN_SLICE` rows) as a candidate tested on all rows. A :class:`RowSpace` ``V`` is read
    block by block: one pass assigns every row to the clusters of every resolution."""
    from data_engine.mine.selection.features import RowSpace

    fit = np.sort(rng.choice(n, FIT_ROWS, replace=False)) if n > FIT_ROWS else np.arange(n)
    lazy = isinstance(V, RowSpace)
    V_fit = V.take(fit) if lazy else V[fit]
    models = [_kmeans(k, len(fit), seed).fit(V_fit)
              for k in sorted({min(k, n // MIN_SLICE) for k in CLUSTER_COUNTS}) if k >= 2]
    del V_fit
    if lazy:
        parts: list[list[np.ndarray]] = [[] for _ in models]
        for block in V.blocks():
            for part, model in zip(parts, models):
                part.append(model.predict(block))
        assigned = [np.concatenate(part) for part in parts]
    else:
        assigned = [model.predict(V) for model in models]
    found = []
    everyone = np.ones(n, dtype=bool)
    for model, labels in zip(models, assigned):
        ulabels = model.predict(Vu) if m else np.empty(0, dtype=int)
        for j in range(model.n_clusters):
            found.append(_Candidate("cluster", labels == j, ulabels == j, everyone, k=model.n_clusters, cluster=j,
                                    centroids=model.cluster_centers_))
    return found


def _tree_candidates(X: np.ndarray, Xu: np.ndarray | None, coder: Encoder, correct: np.ndarray, m: int,
                     rng: np.random.Generator, seed: int) -> list[_Candidate]:
    """The non-root nodes of an error tree fitted on a random half of the rows whose error rate there
    is above the half's; each tested on the other half only."""
    from sklearn.tree import DecisionTreeClassifier

    n = len(correct)
    grow = np.zeros(n, dtype=bool)
    grow[rng.permutation(n)[: n // 2]] = True
    rows = np.flatnonzero(grow)
    if len(rows) > FIT_ROWS:
        rows = np.sort(rng.choice(rows, FIT_ROWS, replace=False))
    wrong = ~correct
    tree = DecisionTreeClassifier(max_depth=ERROR_TREE_DEPTH, min_samples_leaf=max(MIN_SLICE // 2, len(rows) // 50),
                                  random_state=seed).fit(X[rows], wrong[rows])
    path = tree.decision_path(X)  # (n, nodes) sparse: which nodes each row passes
    upath = tree.decision_path(Xu) if m and Xu is not None else None
    base = wrong[rows].mean()
    found = []
    for node, rule in node_rules(tree, coder).items():
        inside = np.asarray(path[:, node].todense()).ravel().astype(bool)
        if not (inside & grow).any() or wrong[inside & grow].mean() <= base:
            continue
        uin = np.asarray(upath[:, node].todense()).ravel().astype(bool) if upath is not None else np.zeros(m, bool)
        found.append(_Candidate("tree", inside, uin, ~grow, conditions=rule))
    return found


def _test(candidates: list[_Candidate], correct: np.ndarray, adjust: bool = True) -> list[_Candidate]:
    """The candidates of a testable size with their Benjamini-Hochberg adjusted one-sided Fisher p-values."""
    from scipy.stats import false_discovery_control, fisher_exact

    n = len(correct)
    kept = []
    for c in candidates:
        size = int(c.members.sum())
        inside, outside = c.members & c.tested, ~c.members & c.tested
        if size > MAX_SHARE * n or inside.sum() < (MIN_SLICE if c.source == "cluster" else MIN_SLICE // 2) \
                or size < MIN_SLICE or not outside.any():
            continue
        table = [[int(correct[inside].sum()), int((~correct[inside]).sum())],
                 [int(correct[outside].sum()), int((~correct[outside]).sum())]]
        c.p = float(fisher_exact(table, alternative="less").pvalue)
        kept.append(c)
    if kept and adjust:
        for c, p in zip(kept, false_discovery_control([c.p for c in kept], method="bh")):
            c.p = float(p)
    return kept


def _select(candidates: list[_Candidate], correct: np.ndarray) -> list[_Candidate]:
    """The significant candidates with a gap of at least :data:`MIN_GAP`; of overlapping ones, the one
    with the lowest p-value (then the largest gap); at most :data:`MAX_SLICES`."""
    def gap(c: _Candidate) -> float:  # on the rows the test read: a tree node's own half would flatter it
        inside, outside = c.members & c.tested, ~c.members & c.tested
        return float(correct[outside].mean() - correct[inside].mean())

    good = sorted((c for c in candidates if c.p < ALPHA and gap(c) >= MIN_GAP), key=lambda c: (c.p, -gap(c)))
    kept: list[_Candidate] = []
    for c in good:
        # Overlap is the share of the smaller group inside the other: a cluster inside a slice already
        # kept is the same weakness seen again.
        if all((c.members & k.members).sum() / min(c.members.sum(), k.members.sum()) <= MAX_OVERLAP for k in kept):
            kept.append(c)
    return kept[:MAX_SLICES]


def _describe(c: _Candidate, i: int, correct: np.ndarray, X: np.ndarray | None, coder: Encoder,
              given: Sequence[str] | None, ids: Sequence[str] | None, embedding: str | None, seed: int) -> WeakSlice:
    """Slice number ``i`` from candidate ``c``: its rule (a tree node's own, or the one that best
    describes a cluster when its precision and coverage reach the minimums), else its class mix and
    example ids (and the rule tried), and its figures on every labeled row. ``X``/``coder``: the
    columns a cluster's rule may read."""
    members = c.members
    conditions, precision, coverage = c.conditions, (1.0 if c.conditions else None), (1.0 if c.conditions else None)
    tried = ""
    if conditions is None and X is not None and X.shape[1]:
        conditions, precision, coverage, tried = cluster_rule(X, members, coder, seed)
    if conditions:
        definition = conditions_text(conditions)
        if c.source == "cluster":
            definition += (f" (states a cluster of the embedding: precision {precision:.0%}, the rule's rows in the "
                           f"cluster; coverage {coverage:.0%}, the cluster's rows the rule selects)")
    else:
        definition = _mix_text(members, given, ids, tried)
    s = WeakSlice(f"discovered-{i}", definition, int(members.sum()), float(correct[members].mean()),
                  float(correct[~members].mean()), c.p, c.source, np.flatnonzero(members), c.unlabeled,
                  conditions=conditions or None, rule_precision=precision, rule_coverage=coverage)
    if not conditions and c.source == "cluster" and embedding:  # defined by its centre in a stored embedding
        s.centroids, s.cluster, s.embedding = c.centroids, c.cluster, embedding
    return s


def _mix_text(members: np.ndarray, given: Sequence[str] | None, ids: Sequence[str] | None, tried: str = "") -> str:
    """A slice without a rule: its most common given classes and a few example ids; ``tried``: why
    the named columns give no rule (empty: there are none)."""
    words = ["a cluster of the embedding" + (f"; {tried}" if tried else " (no named input columns to describe it by)")]
    if given is not None:
        counts = pd.Series(np.asarray(given, dtype=object)[members]).value_counts(normalize=True).head(2)
        words.append("given labels " + ", ".join(f"{share:.0%} {label!r}" for label, share in counts.items()))
    if ids is not None:
        words.append("e.g. " + ", ".join(map(str, np.asarray(ids, dtype=object)[members][:EXAMPLE_IDS])))
    return "; ".join(words)


def discover_slices(state: Any, modality: str, seed: int = 0, findings: Mapping[str, str] | None = None) -> SliceReport:
    """The weak slices of a mining run's ``state`` (:class:`data_engine.mine.predictions.PredictionState`):
    its out-of-fold predictions judged by the task (:meth:`~data_engine.tasks.Task.example_correct`),
    clustered in the stored per-row embedding when both frames carry it, else in the members' dense
    feature space fitted on the labeled and unlabeled rows together (unsupervised: no label is read).
    ``modality``: ``[dataset] modality``; ``findings``: the run's column findings (column -> type), as
    :func:`find_weak_slices` reads them."""
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN
    from data_engine.mine.selection.features import slice_space

    train, unl = state.train, state.unlabeled
    if len(train) < MIN_ROWS:
        return SliceReport(summary={"skipped": f"fewer than {MIN_ROWS} labeled examples"})
    correct = state.task.example_correct(state.labels, state.oof_probs, state.classes)
    stored = EMBEDDING_COLUMN in train.columns and (not len(unl) or EMBEDDING_COLUMN in unl.columns)
    if not stored and "image" in state.schema.values():
        # Image files without stored vectors would be embedded again on every run: not on the hot path.
        return SliceReport(summary={"skipped": "image files without a stored embedding ([mining] embedding)"})
    # The queue asks for a few examples per slice: a random sample of the unlabeled pool is enough
    # to place, and keeps a large pool off the hot path.
    pick = np.arange(len(unl)) if len(unl) <= MAX_UNLABELED else \
        np.sort(np.random.default_rng(seed).choice(len(unl), MAX_UNLABELED, replace=False))
    unl = unl.iloc[pick]
    space, unlabeled_space = slice_space(train, unl, state.schema, modality, EMBEDDING_COLUMN if stored else None, seed)
    given = state.task.decode(state.labels, state.classes) if state.labels.ndim == 1 else None
    report = find_weak_slices(train, state.schema, correct, space, unlabeled=unl.reset_index(drop=True),
                              unlabeled_vectors=unlabeled_space, given=given,
                              ids=train["example_id"].astype(str).to_numpy(dtype=object),
                              embedding=state.embedding if stored else None, seed=seed, findings=findings)
    for found in report.slices:  # back to one flag per unlabeled row of the run
        full = np.zeros(len(state.unlabeled), dtype=bool)
        full[pick] = found.unlabeled
        found.unlabeled = full
    return report


def stored_slices(con: Any) -> pd.DataFrame:
    """The ``discovered_slices`` rows of the newest mining run (empty before one, or when it found none)."""
    return con.execute(
        "SELECT * FROM discovered_slices WHERE run_id = (SELECT max(run_id) FROM mining_runs) ORDER BY name"
    ).fetchdf()


def stored_slice_masks(rows: pd.DataFrame, frame: pd.DataFrame,
                       embedding: str | None = None) -> tuple[dict[str, np.ndarray], list[str]]:
    """Which rows of ``frame`` (N, e.g. the gold examples) are in each stored slice ``rows``
    (:func:`stored_slices`): ``{name: (N,) bool}``, and one sentence per slice that cannot be applied
    (a column the frame lacks; centroids of an embedding ``frame`` does not carry, ``embedding``
    being the one it does).

    A slice with a rule is applied by its rule; one defined by centroids, by the nearest centroid of
    the frame's stored vectors (``EMBEDDING_COLUMN``)."""
    from data_engine.mine.embedders.base import EMBEDDING_COLUMN

    masks: dict[str, np.ndarray] = {}
    notes: list[str] = []
    for r in rows.to_dict("records"):
        conditions = r.get("conditions")  # JSON text, a list, or missing (None, or NaN from a frame of records)
        conditions = json.loads(conditions) if isinstance(conditions, str) else \
            conditions if isinstance(conditions, list) else None
        if conditions:
            try:
                masks[r["name"]] = conditions_mask(frame, conditions)
            except KeyError as exc:
                notes.append(f"discovered slice {r['name']!r} not checked: {exc.args[0]}")
            continue
        centroids = json.loads(r["centroids"]) if isinstance(r.get("centroids"), str) else None
        if centroids is None or r.get("embedding") != embedding or EMBEDDING_COLUMN not in frame.columns:
            notes.append(f"discovered slice {r['name']!r} not checked: it has no rule and the data carry no "
                         f"vectors of the embedding it was found in ({r.get('embedding') or 'a fitted space'})")
            continue
        if not len(frame):
            masks[r["name"]] = np.zeros(0, dtype=bool)
            continue
        V = np.stack(frame[EMBEDDING_COLUMN].to_numpy()).astype(np.float64)
        C = np.asarray(centroids, dtype=np.float64)
        nearest = ((V[:, None, :] - C[None, :, :]) ** 2).sum(axis=2).argmin(axis=1)
        masks[r["name"]] = nearest == int(r["cluster"])
    return masks, notes
