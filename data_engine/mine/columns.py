"""Dataset-level findings about input columns: shortcut (possible leak), useless, identifier, scale,
no terms (a text column the TF-IDF finds no word or character n-gram in, :func:`no_term_issues`),
case variants (a categorical value spelt with another letter case or surrounding spaces, and
classes of the label column spelt so, :mod:`data_engine.mine.case_variants`).

Per input column (numeric and categorical; text columns only for the identifier check and the
no-terms one; these and the case-variants check read every labeled row), on a random sample of at most :data:`SAMPLE_ROWS` labeled rows and at most :data:`MAX_COLUMNS` columns
(the rest are named in the summary as not checked):

- a single-feature model (a small decision tree on the column alone, at most two leaves per class;
  a categorical column target-encoded inside each fold, scikit-learn's ``TargetEncoder``) is
  cross-validated (stratified, :data:`FOLDS` folds);
- **shortcut**: its accuracy closes at least :data:`SHORTCUT_GAP` of the gap between the true
  majority-class baseline (the majority class's *share* of the sample) and perfect accuracy: the
  column predicts the label almost alone, which is what a leak (the label in disguise, a field
  filled in after the fact) looks like. The figure is that accuracy;
- **useless**: neither of two tests finds an association with the label at :data:`USELESS_ALPHA`:
  the one-way ANOVA F-test of a numeric column across the classes (scikit-learn ``f_classif``; a
  difference of means) or the chi-square test of independence of a categorical one (scipy), and
  the single-feature model's cross-validated ROC AUC against the same model on shuffled labels
  (scikit-learn's ``permutation_test_score``, Ojala & Garriga 2010, with :data:`PERMUTATIONS`
  permutations; any shape of association). No correction over columns: without
  one, a column with real signal is the one less likely to be called useless. The figure is the
  permutation p-value. A column that helps only together with others is not seen by single-feature
  tests; a constant column is useless with figure 1;
- **identifier**: a column with a distinct value in (nearly) every row that is an evenly spaced
  number (a row number), an integer in the rows' order (a sequence) or a code without spaces (a
  uuid), :func:`data_engine.ingest.identifiers.identifier_share`; the figure is its share of
  distinct values. Identifiers are not judged useless (the identifier finding already says to
  drop them) but are still checked as shortcuts (rows stored in label order make a row number
  predict the label);
- a column with fewer than :data:`MIN_LEAF` rows off its most common value is not judged useless
  either (the tree cannot split, the tests have no power); ``summary["not_judged_useless"]`` names it;
- **scale**: a numeric column whose spread (inter-quartile range, else standard deviation) is at
  least :data:`SCALE_RATIO` times larger or smaller than the median spread of the numeric columns,
  reported only when the model family reads raw numbers. Every member of
  :mod:`data_engine.mine.models` standardises numeric columns (``numeric_block(scale=True)``;
  trees and naive Bayes do not care), so mining runs pass ``scale_sensitive=False`` and name none.

For a regression task (numeric labels) the baseline is the mean (R^2 = 0), the scores are R^2, the
tree is a regressor of :data:`REGRESSION_LEAVES` leaves, and the first useless test is the F-test of
a linear association (``f_regression``) or a one-way ANOVA across a categorical column's categories.

For labels that are sets (tags; the entity types of a text's spans; the classes of an image's boxes,
:meth:`data_engine.tasks.Task.carried_tags`), each of the K tags is its own two-class label: a
shortcut predicts whether an example carries one tag (what a leak gives away), with the figure that
tag's accuracy against its own majority share; a column is useless when the classical test finds
nothing for any tag after a Bonferroni correction over the K tags and, for a numeric column, one
multi-output tree's mean ROC AUC over the tags does no better than on :data:`PERMUTATIONS` row
shuffles of the tag sets (which keep the tags' co-occurrence). The engine's span and box models read
only the text or image; a feature column is then read by a trainer of the user's own, and a shortcut
there is still a leak.

cleanlab has no such check for tabular columns: its spurious-correlation check is for image
properties (and takes the majority class's index as its baseline), its ``identifier_column`` check
is unreachable from Datalab; hence this module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from data_engine.ingest.identifiers import identifier_share
from data_engine.mine.association import univariate_p
from data_engine.mine.case_variants import case_variant_issues, label_case_variant_issues

# Rows and columns checked at most: the cost is up to (columns x (permutations + 1) x folds) fits of
# a small tree on one column (the permutations only where the first test found nothing); about 6 s
# for digits' 64 columns of 1,797 rows on one core.
SAMPLE_ROWS = 5000
MAX_COLUMNS = 100
FOLDS = 3
PERMUTATIONS = 19
# Share of the gap between the majority baseline and perfect accuracy a column must close alone.
SHORTCUT_GAP = 0.9
USELESS_ALPHA = 0.05
SCALE_RATIO = 1000.0
# Leaves of the single-feature tree per class, and its smallest leaf: grown best-first, it can give
# every class an interval of its own (a depth limit cannot: depth 4 reached 0.70 on a 10-class leak),
# while a leaf of at least MIN_LEAF rows keeps it from memorising noise.
LEAVES_PER_CLASS = 2
# Leaves of the single-feature regression tree: a step function of 16 levels.
REGRESSION_LEAVES = 16
MIN_LEAF = 10
# Fewer labeled rows than this (or a class with fewer than FOLDS rows only): no model-based checks.
MIN_ROWS = 30


@dataclass
class ColumnReport:
    """What the column checks found: ``issues`` (dicts ``type``, ``column``, ``figure``, ``reason``)
    and ``summary`` (rows sampled, columns checked and not checked, the majority baseline)."""

    issues: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def column_issues(inputs: pd.DataFrame, labels: np.ndarray, schema: Mapping[str, str], *,
                  regression: bool = False, tag_sets: bool = False, classes: Sequence[str] = (),
                  tag_noun: str = "tag", scale_sensitive: bool = False, seed: int = 0,
                  label_column: str | None = None) -> ColumnReport:
    """Check every input column of ``inputs`` (N rows, the columns of ``schema``: name -> ``numeric``,
    ``categorical`` or ``text``; other kinds are skipped) against class indices ``labels`` (N,), or
    with ``regression`` against numeric labels (N,; the baseline is then the mean, R^2 = 0, and the
    scores are R^2: a shortcut explains at least :data:`SHORTCUT_GAP` of the variance alone), or with
    ``tag_sets`` against a 0/1 matrix (N, K) of which of the K tags named ``classes`` each example
    carries (tags, or the entity types or box classes a span or box set holds; ``tag_noun`` names one
    in the reasons): each tag is its own two-class label, a shortcut gives away any one tag, a useless
    column predicts none (see :func:`_tag_checks`); ``summary["tag_baselines"]`` holds each tested
    tag's majority share and ``summary["tags_not_tested"]`` the tags present (or absent) in fewer than
    :data:`FOLDS` rows. Any other 2-D labels skip the model-based checks. Given ``label_column`` and
    ``classes`` (class indices or tag sets), the classes spelt in two ways that differ only in letter
    case or spaces are named too, counted over every labeled row (:func:`label_case_variant_issues`).

    ``scale_sensitive``: whether the model family reads raw numbers (see the module docstring).
    Returns a :class:`ColumnReport`; rows beyond :data:`SAMPLE_ROWS` are sampled at random (``seed``),
    columns beyond :data:`MAX_COLUMNS` are not checked and are named in ``summary["not_checked"]``.
    Raises nothing for small or one-class data: the model-based checks are then skipped and the
    summary says why.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rows = np.arange(len(labels))
    if len(rows) > SAMPLE_ROWS:
        rows = np.sort(rng.choice(rows, SAMPLE_ROWS, replace=False))
    frame, y = inputs.iloc[rows].reset_index(drop=True), labels[rows]
    columns = [c for c, kind in schema.items() if kind in ("numeric", "categorical", "text") and c in frame.columns]
    report = ColumnReport(summary={"sampled_rows": len(rows), "rows": len(labels),
                                   "columns_checked": columns[:MAX_COLUMNS], "not_checked": columns[MAX_COLUMNS:]})
    columns = columns[:MAX_COLUMNS]
    if label_column is not None and len(classes) and (tag_sets or (labels.ndim == 1 and not regression)):
        counts = labels.reshape(len(labels), -1).sum(axis=0) if tag_sets else np.bincount(labels, minlength=len(classes))
        report.issues += label_case_variant_issues(label_column, classes, counts, tags=tag_sets, tag_noun=tag_noun)
    if not columns:
        report.summary["nothing_checked"] = ("no numeric, categorical or text input column (image files are "
                                             "judged by the embedding's detectors and slices)")
        return report
    # Judged on the whole column in stored order: a sample of a sequence is neither dense nor in order.
    identifiers = {c: share for c in columns if (share := identifier_share(inputs[c], schema[c])) is not None}
    for c, share in identifiers.items():
        report.issues.append(_issue("identifier", c, share, (
            f"{share:.0%} of its values are distinct and it is a sequence or a code: an identifier, not a "
            "feature; drop it from the input columns (a model can only memorise it)")))
    report.issues += no_term_issues(inputs, [c for c in columns if schema[c] == "text"])
    report.issues += case_variant_issues(inputs, [c for c in columns if schema[c] == "categorical"])
    modelled = [c for c in columns if schema[c] in ("numeric", "categorical")]
    if regression:
        y = y.astype(float)
        why_not = ("fewer than %d labeled rows" % MIN_ROWS if len(y) < MIN_ROWS
                   else "the labels are all the same value" if np.nanstd(y) == 0 else None)
        baseline = 0.0  # R^2 of predicting the mean
    elif tag_sets:
        y = np.asarray(y, dtype=int).reshape(len(y), -1)
        names = [str(classes[k]) if k < len(classes) else f"{tag_noun} {k}" for k in range(y.shape[1])]
        tested = [k for k in range(y.shape[1]) if min(y[:, k].sum(), len(y) - y[:, k].sum()) >= FOLDS]
        why_not = ("fewer than %d labeled rows" % MIN_ROWS if len(y) < MIN_ROWS
                   else f"no {tag_noun} both present and absent in {FOLDS} rows" if not tested else None)
        report.summary["tag_baselines"] = {names[k]: round(float(max(y[:, k].mean(), 1 - y[:, k].mean())), 4)
                                           for k in tested}
        report.summary["tags_not_tested"] = [names[k] for k in range(y.shape[1]) if k not in tested]
        report.summary["labels_read_as"] = f"whether each example carries each {tag_noun}, as its own two-class label"
        baseline = 0.0
    elif y.ndim == 2:
        why_not = "the labels are not one class, one number or a set of tags"
    else:
        counts = np.bincount(y, minlength=int(y.max()) + 1) if len(y) else np.array([])
        why_not = ("fewer than %d labeled rows" % MIN_ROWS if len(y) < MIN_ROWS
                   else "fewer than two classes with %d rows" % FOLDS if (counts >= FOLDS).sum() < 2 else None)
        if why_not is None:
            keep = counts[y] >= FOLDS  # a class too small to split in FOLDS folds cannot be scored
            frame, y = frame[keep].reset_index(drop=True), np.unique(y[keep], return_inverse=True)[1]
            baseline = float(np.bincount(y).max() / len(y))
    if why_not is None:
        # Where fewer than MIN_LEAF rows differ from the column's most common value, the single-column tree
        # cannot split and the tests have no power: digits' border pixels, non-zero in 1-7 of 1,797 images,
        # were named useless although a model on all pixels reads them for those images. Not judged.
        rare = [c for c in modelled if 0 < rows_off_mode(frame[c]) < MIN_LEAF]
        for c in modelled:
            if tag_sets:
                report.issues += _tag_checks(frame[c], schema[c], y[:, tested], [names[k] for k in tested], c,
                                             c in identifiers or c in rare, seed, tag_noun)
            else:
                report.issues += _model_checks(frame[c], schema[c], y, baseline, c, c in identifiers or c in rare,
                                               seed, regression)
        report.summary["not_judged_useless"] = rare
        if not tag_sets:
            report.summary["mean_baseline_r2" if regression else "majority_baseline"] = baseline
    else:
        report.summary["model_checks_skipped"] = why_not
    if scale_sensitive:
        report.issues += scale_issues(frame, [c for c in columns if schema[c] == "numeric"])
    return report


def no_term_issues(frame: pd.DataFrame, text_columns: Sequence[str]) -> list[dict[str, Any]]:
    """A ``no_terms`` finding (figure 0, the terms kept) per text column of ``frame`` (N rows: every
    labeled row, not a sample, so a few worded texts among many empty ones still count) in which the
    models' TF-IDF (:func:`data_engine.mine.features.text_features`) would keep no word or no
    character n-gram: :class:`~data_engine.mine.text_tfidf.TextTfidf` then reads that part as one
    all-zero feature, without an error, so the run says it here, once per column. Decided by
    :func:`~data_engine.mine.text_tfidf.keeps_terms` (scikit-learn's analyzer, no fit; it stops at the
    first kept term)."""
    from data_engine.mine.features import fill_text, text_features
    from data_engine.mine.text_tfidf import keeps_terms

    issues = []
    word, char = (t for _, t in text_features(char=True)[-1].transformer_list)
    for c in text_columns:
        texts = fill_text(frame[c])
        lost = [part for part, t in (("word", word), ("character n-gram seen in two texts", char))
                if not keeps_terms(t, texts)]
        if lost:
            issues.append(_issue("no_terms", c, 0, (
                f"no {' and no '.join(lost)} in its {len(frame)} texts checked: the models read "
                f"{'this column' if len(lost) == 2 else 'that part'} as one all-zero feature (empty, "
                "punctuation-only or too few texts)")))
    return issues


def rows_off_mode(values: pd.Series) -> int:
    """How many rows of ``values`` (N,; missing is a value) differ from its most common value."""
    counts = values.astype(object).where(values.notna(), "<missing>").value_counts()
    return int(len(values) - counts.iloc[0]) if len(counts) else 0


def _issue(kind: str, column: str, figure: float, reason: str) -> dict[str, Any]:
    return {"type": kind, "column": column, "figure": round(float(figure), 4), "reason": reason}


def _model_checks(values: pd.Series, kind: str, y: np.ndarray, baseline: float, column: str,
                  not_judged: bool, seed: int, regression: bool, target: str = "the label") -> list[dict[str, Any]]:
    """Shortcut and useless checks of one column (see the module docstring); ``not_judged``: an identifier,
    or too few rows off its most common value to test, is never named useless; ``target``: what ``y`` is,
    in the reasons."""
    from sklearn.model_selection import permutation_test_score

    X = values.to_frame()
    if kind == "numeric":
        X = X.apply(pd.to_numeric, errors="coerce").astype(float)
        if X[column].nunique() <= 1:
            return [] if not_judged else [_issue("useless", column, 1.0, (
                "constant: one value in every sampled row; drop it from the input columns"))]
    elif values.fillna("<missing>").nunique() <= 1:
        return [] if not_judged else [_issue("useless", column, 1.0, (
            "constant: one category in every sampled row; drop it from the input columns"))]
    model, cv = single_feature_model(kind, None if regression else int(y.max()) + 1, seed), _folds(regression, seed)
    metric, base_name = ("R^2", "the mean's 0") if regression else ("accuracy", f"the majority baseline {baseline:.3f}")
    accuracy = single_column_score(X, kind, y, regression=regression, seed=seed)
    found = []
    closed = (accuracy - baseline) / (1.0 - baseline) if baseline < 1.0 else 0.0
    if closed >= SHORTCUT_GAP:
        found.append(_issue("shortcut", column, accuracy, (
            f"alone it predicts {target} with {metric} {accuracy:.3f} against {base_name} "
            f"({FOLDS}-fold cross-validated): possibly a leak; keep it only if its value is known before the "
            "label is, else drop it from the input columns")))
    # The permutation test runs only where the first test found nothing: a column is useless when neither
    # finds an association, so skipping it elsewhere changes no finding and saves most of the cost.
    test, test_p = univariate_p(values, kind, y, regression=regression)
    if not not_judged and test_p > USELESS_ALPHA:
        scoring = "r2" if regression else "roc_auc" if y.max() == 1 else "roc_auc_ovr"
        score, _, p = permutation_test_score(model, X, y, cv=cv, scoring=scoring, n_permutations=PERMUTATIONS,
                                             random_state=seed)
        if p > USELESS_ALPHA:
            found.append(_issue("useless", column, p, (
                f"alone it does no better than with shuffled labels ({'R^2' if regression else 'ROC AUC'} {score:.3f}, "
                f"permutation p = {p:.2f}; {test} p = {test_p:.2f}; "
                f"{metric} {accuracy:.3f} against {base_name}): it adds noise; drop it "
                "unless it helps in combination with other columns")))
    return found


def _tag_checks(values: pd.Series, kind: str, y: np.ndarray, tags: list[str], column: str,
                not_judged: bool, seed: int, tag_noun: str = "tag") -> list[dict[str, Any]]:
    """Shortcut and useless checks of one column against tag sets ``y`` (N, K) 0/1, each tag two classes
    (``tags``: their names; ``tag_noun``: what one is called in the reasons).

    Shortcut: :func:`_model_checks`' rule for the tag the column predicts best (a leak gives away one
    tag). Useless: the classical test finds nothing for any tag after a Bonferroni correction over the
    K tags (without it, a noise column would show something for one of many tags by chance), and a
    permutation test of one multi-output single-feature tree (the tags' mean ROC AUC against
    :data:`PERMUTATIONS` row shuffles of the tag sets, which keep the tags' co-occurrence) finds nothing."""
    from sklearn.model_selection import KFold, permutation_test_score

    found = []
    for k, tag in enumerate(tags):
        found += _model_checks(values, kind, y[:, k], float(max(y[:, k].mean(), 1 - y[:, k].mean())), column,
                               True, seed, False, target=f"whether an example carries {tag_noun} {tag!r}")
    if found:
        return [max(found, key=lambda i: i["figure"])]
    X = values.to_frame()
    if kind == "numeric":
        X = X.apply(pd.to_numeric, errors="coerce").astype(float)
    if (X[column] if kind == "numeric" else values.fillna("<missing>")).nunique() <= 1:
        return [] if not_judged else [_issue("useless", column, 1.0, (
            "constant: one value in every sampled row; drop it from the input columns"))]
    test, p_min = min((univariate_p(values, kind, y[:, k]) for k in range(len(tags))), key=lambda t: t[1])
    if not_judged or p_min * len(tags) <= USELESS_ALPHA:
        return []
    nouns = tag_noun + ("es" if tag_noun.endswith("s") else "s")
    found_by = f"smallest {test} p over the {len(tags)} {nouns} = {p_min:.2f}, before the correction for them"
    p = 1.0
    if kind == "numeric":
        # The chi-square test already sees any association of categories; a number needs the tree's test
        # for shapes a difference of means misses. (TargetEncoder reads one target, not a tag matrix.)
        score, _, p = permutation_test_score(
            single_feature_model(kind, 2, seed), X, y if y.shape[1] > 1 else y[:, 0],
            cv=KFold(FOLDS, shuffle=True, random_state=seed), scoring=_mean_tag_auc,
            n_permutations=PERMUTATIONS, random_state=seed)
        if p <= USELESS_ALPHA:
            return []
        found_by = f"mean ROC AUC over the {nouns} {score:.3f}, permutation p = {p:.2f}; {found_by}"
    return [_issue("useless", column, p if kind == "numeric" else min(p_min * len(tags), 1.0), (
        f"alone it predicts no {tag_noun} better than chance ({found_by}): it adds noise; drop it unless it helps in "
        "combination with other columns"))]


def _mean_tag_auc(estimator: Any, X: pd.DataFrame, y: np.ndarray) -> float:
    """The mean ROC AUC over the tags of ``y`` (N, K) 0/1 of a fitted multi-output classifier, over the
    tags present and absent in ``y`` and seen both ways in training (0.5 when none is)."""
    from sklearn.metrics import roc_auc_score

    probs, y = estimator.predict_proba(X), np.asarray(y).reshape(len(X), -1)
    probs = probs if isinstance(probs, list) else [probs]
    aucs = [roc_auc_score(y[:, k], p[:, 1]) for k, p in enumerate(probs)
            if p.shape[1] == 2 and 0 < y[:, k].sum() < len(y)]
    return float(np.mean(aucs)) if aucs else 0.5


def _folds(regression: bool, seed: int) -> Any:
    from sklearn.model_selection import KFold, StratifiedKFold

    return (KFold if regression else StratifiedKFold)(FOLDS, shuffle=True, random_state=seed)


def single_column_score(X: pd.DataFrame, kind: str, y: np.ndarray, *, regression: bool = False, seed: int = 0) -> float:
    """The cross-validated score of the single-feature model (:func:`single_feature_model`) on the
    one-column frame ``X`` (N, 1) of a ``numeric`` (already numbers) or ``categorical`` column against
    class indices ``y`` (N,; mean accuracy over :data:`FOLDS` stratified folds) or, with ``regression``,
    numeric ``y`` (mean R^2 over :data:`FOLDS` folds)."""
    from sklearn.model_selection import cross_val_score

    model = single_feature_model(kind, None if regression else int(y.max()) + 1, seed)
    return float(cross_val_score(model, X, y, cv=_folds(regression, seed),
                                 scoring="r2" if regression else "accuracy").mean())


def single_feature_model(kind: str, n_classes: int | None, seed: int = 0) -> Any:
    """The unfitted single-feature model of one ``numeric`` or ``categorical`` column (a one-column
    frame): a classifier for ``n_classes`` classes, or (None) a regressor of at most
    :data:`REGRESSION_LEAVES` leaves.

    The tree reads missing numbers natively; a categorical column is target-encoded with
    cross-fitting inside each fold (scikit-learn ``TargetEncoder``), so a rare category cannot
    leak its own label."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, TargetEncoder
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    from data_engine.mine.features import fill_category

    from sklearn.model_selection import KFold

    if n_classes is None:
        tree = DecisionTreeRegressor(max_leaf_nodes=REGRESSION_LEAVES, min_samples_leaf=MIN_LEAF, random_state=seed)
    else:
        tree = DecisionTreeClassifier(max_leaf_nodes=max(2, LEAVES_PER_CLASS * n_classes),
                                      min_samples_leaf=MIN_LEAF, random_state=seed)
    if kind == "numeric":
        return tree
    encoder = TargetEncoder(cv=KFold(5, shuffle=True, random_state=seed))
    return make_pipeline(FunctionTransformer(fill_category), encoder, tree)


def scale_issues(frame: pd.DataFrame, numeric: list[str]) -> list[dict[str, Any]]:
    """Numeric columns whose spread is :data:`SCALE_RATIO` times off the median spread of ``numeric``.

    The figure is the ratio of the column's spread to the median spread."""
    spreads = {}
    for c in numeric:
        x = pd.to_numeric(frame[c], errors="coerce").dropna().to_numpy(dtype=float)
        if len(x) < 2:
            continue
        q1, q3 = np.percentile(x, [25, 75])
        spread = q3 - q1 if q3 > q1 else float(np.std(x))
        if spread > 0:
            spreads[c] = spread
    if len(spreads) < 3:  # with one or two columns there is no "usual" scale to differ from
        return []
    median = float(np.median(list(spreads.values())))
    found = []
    for c, s in spreads.items():
        ratio = s / median
        if ratio >= SCALE_RATIO or ratio <= 1.0 / SCALE_RATIO:
            found.append(_issue("scale", c, ratio, (
                f"its spread is {ratio:.3g} times the median spread of the numeric columns and the model reads "
                "raw numbers: it dominates (or vanishes from) distances and penalties; standardise the numeric "
                "columns")))
    return found
