"""``data-engine bench columns``: shortcut, useless and identifier columns
(:mod:`data_engine.mine.columns`) named on held-out data sets with planted columns, against the
obvious baselines, in one run.

Data (no download; the thresholds of :mod:`data_engine.mine.columns` were fixed before these were
tried): scikit-learn's bundled breast-cancer (569 rows, 30 numbers, 2 classes), wine (178, 13, 3),
iris (150, 4, 3), digits (1,797, 64 pixels, 10) and diabetes (442, 10; its disease progression as a
number: a regression), and, when the shared data folder is there, the 3,000 review sentences (a
text column and the ``site`` each came from, a real categorical column known to be useless: every
site has 500 positive and 500 negative sentences). Rows are shuffled (``--seed``), then four columns
are planted: ``leak`` (the class index plus normal noise of sd 0.1; for the regression the value plus
noise of 5 % of its sd), ``noise`` (standard normal), ``row_id`` (the row number) and ``uuid`` (a
random uuid, categorical).

*Detected* counts the planted columns named with their kind (``leak`` shortcut, ``noise`` useless,
``row_id`` and ``uuid`` identifier), plus the known useless ``site``, among the kinds the method
names. *False alarms* count every other name: a real column named a shortcut or an identifier,
``leak`` or ``noise`` named anything else, an identifier named a shortcut (rows are shuffled, so a
row number carries no label). Naming an identifier or a column constant in the data useless is not
counted. Another real column named useless is counted *strictly* always, and *measured* only when a
model on all the columns loses accuracy without it: scaled logistic regression (ridge for the
regression), the same 5 x 2 cross-validation folds with and without the column, a one-sided paired
t-test at 0.05 on the fold scores (which overlapping folds make liberal: more columns count as
useful, so more names count as false alarms).

Baselines, each the obvious rule of its kind:

- ``naive``: shortcut = the same single-column tree beats the majority class (regression: R^2 above
  0) at all; useless = the classical univariate test (ANOVA F-test, chi-square, F-test of a linear
  association) finds nothing at 0.05 without correction; identifier = at least 99 % distinct values;
- ``cleanlab``: cleanlab's own spurious-correlation score (``SpuriousCorrelations``: Gaussian naive
  Bayes on the column alone, 5 folds, the majority class's *index* as baseline accuracy, flagged below
  its Datalab threshold 0.3), shortcuts only and classification only; categorical columns as codes.
"""

from __future__ import annotations

import argparse
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from data_engine.store.home import Home

if TYPE_CHECKING:  # numpy and pandas load when the benchmark runs: building the CLI's parser stays light
    import numpy as np
    import pandas as pd

DATASETS = ("breast-cancer", "wine", "iris", "digits", "diabetes", "sentiment")
PLANTED = {"leak": {"shortcut"}, "noise": {"useless"}, "row_id": {"identifier", "useless"},
           "uuid": {"identifier", "useless"}}
# What each planted (or known) column must be named to count as detected.
DETECT = {"leak": "shortcut", "noise": "useless", "row_id": "identifier", "uuid": "identifier"}
# cleanlab's Datalab threshold for a spurious correlation (cleanlab.datalab.internal.adapter.constants).
CLEANLAB_THRESHOLD = 0.3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``bench columns``."""
    p.add_argument("--datasets", default=",".join(DATASETS),
                   help="comma-separated; 'sentiment' needs the shared sentiment sentences (else it is skipped)")
    p.add_argument("--seed", type=int, default=0)


def load(name: str) -> tuple[pd.DataFrame, np.ndarray, dict[str, str], bool, dict[str, str]]:
    """A data set: input columns, labels (N,; class indices, or numbers for the regression), the schema,
    whether it is a regression, and its known real findings (column -> kind)."""
    import numpy as np
    import pandas as pd
    from sklearn import datasets

    from data_engine.errors import EngineError

    if name == "sentiment":
        from data_engine.bench.datasets import load_sentiment_dataset

        d = load_sentiment_dataset()
        frame = d.frame.assign(site=d.groups)
        y = np.unique(d.labels, return_inverse=True)[1]
        return frame, y, {"sentence": "text", "site": "categorical"}, False, {"site": "useless"}
    if name not in DATASETS:
        raise EngineError(f"unknown data set {name!r} for bench columns; use some of: {', '.join(DATASETS)}")
    bunch = getattr(datasets, f"load_{name.replace('-', '_')}")(as_frame=True)
    frame = bunch.data.rename(columns=str)
    regression = name == "diabetes"
    y = bunch.target.to_numpy(dtype=float if regression else int)
    return frame, y, dict.fromkeys(frame.columns, "numeric"), regression, {}


def plant(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str], regression: bool,
          seed: int) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """Shuffle the rows and add the planted columns ``leak``, ``noise``, ``row_id`` and ``uuid``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    frame, y = frame.iloc[order].reset_index(drop=True), y[order]
    spread = 0.05 * float(np.std(y)) if regression else 0.1
    frame = frame.assign(leak=y + rng.normal(0, spread, len(y)), noise=rng.normal(0, 1, len(y)),
                         row_id=np.arange(len(y)),
                         uuid=[str(uuid.UUID(int=int(rng.integers(0, 2**63)))) for _ in y])
    return frame, y, {**schema, "leak": "numeric", "noise": "numeric", "row_id": "numeric", "uuid": "categorical"}


def engine_names(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str], regression: bool,
                 seed: int) -> set[tuple[str, str]]:
    """(kind, column) the engine's column checks name."""
    from data_engine.mine.columns import column_issues

    report = column_issues(frame, y, schema, regression=regression, seed=seed)
    return {(i["type"], i["column"]) for i in report.issues}


def naive_names(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str], regression: bool,
                seed: int) -> set[tuple[str, str]]:
    """(kind, column) the naive rules name (see the module docstring)."""
    import numpy as np
    import pandas as pd

    from data_engine.ingest.identifiers import IDENTIFIER_UNIQUE
    from data_engine.mine.association import univariate_p
    from data_engine.mine.columns import USELESS_ALPHA, single_column_score

    baseline = 0.0 if regression else float(np.bincount(y).max() / len(y))
    names = set()
    for c, kind in schema.items():
        present = frame[c].dropna()
        if present.nunique() >= IDENTIFIER_UNIQUE * len(present):
            names.add(("identifier", c))
        if kind == "text":
            continue
        X = frame[[c]].apply(pd.to_numeric, errors="coerce") if kind == "numeric" else frame[[c]]
        if single_column_score(X, kind, y, regression=regression, seed=seed) > baseline:
            names.add(("shortcut", c))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # scikit-learn's note on a constant column
            p = univariate_p(frame[c], kind, y, regression=regression)[1]
        if p > USELESS_ALPHA:
            names.add(("useless", c))
    return names


def cleanlab_names(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str]) -> set[tuple[str, str]]:
    """(``shortcut``, column) cleanlab's spurious-correlation score flags (classification only)."""
    import pandas as pd
    from cleanlab.datalab.internal.spurious_correlation import SpuriousCorrelations

    columns = [c for c, kind in schema.items() if kind != "text"]
    coded = pd.DataFrame({c: frame[c] if schema[c] == "numeric" else pd.factorize(frame[c])[0] for c in columns})
    scores = SpuriousCorrelations(coded.astype(float), y).calculate_correlations()
    return {("shortcut", p) for p in scores.query("score < @CLEANLAB_THRESHOLD")["property"]}


def drop_costs(frame: pd.DataFrame, y: np.ndarray, schema: dict[str, str], regression: bool, columns: set[str],
               seed: int) -> dict[str, bool]:
    """Per column of ``columns``: whether a model on every non-text real column of ``frame`` scores worse
    without it (see the module docstring: 5 x 2 folds, a one-sided paired t-test at 0.05)."""
    import numpy as np
    from scipy.stats import ttest_rel
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def fold_scores(columns: list[str]) -> np.ndarray:
        numeric = [c for c in columns if schema[c] == "numeric"]
        encode = make_column_transformer((StandardScaler(), numeric),
                                         (OneHotEncoder(handle_unknown="ignore"), [c for c in columns if c not in numeric]))
        model = make_pipeline(encode, Ridge() if regression else LogisticRegression(max_iter=2000))
        cv = (RepeatedKFold if regression else RepeatedStratifiedKFold)(n_splits=5, n_repeats=2, random_state=seed)
        return cross_val_score(model, frame[columns], y, cv=cv, scoring="r2" if regression else "accuracy")

    real = [c for c, kind in schema.items() if kind != "text" and c not in DETECT]
    with_all, useful = fold_scores(real), {}
    for column in sorted(columns):
        without = fold_scores([c for c in real if c != column])
        useful[column] = bool(not np.allclose(with_all, without)
                              and ttest_rel(with_all, without, alternative="greater").pvalue < 0.05)
    return useful


def score(names: set[tuple[str, str]], kinds: set[str], known: dict[str, str], constant: set[str],
          useful: dict[str, bool]) -> dict[str, Any]:
    """Detected (of the planted and known findings of the ``kinds`` a method names) and false alarms: the
    names no rule allows, strictly (every real column named) and measured (a real column named useless
    counts only when ``useful[column]``, the drop-column test's answer); a ``constant`` column may be named
    useless in both readings."""
    expected = {c: kind for c, kind in {**DETECT, **known}.items() if kind in kinds}
    allowed = {**PLANTED, **{c: {k} for c, k in known.items()}, **{c: {"useless"} for c in constant}}
    strict = sorted(f"{kind} {c}" for kind, c in names if kind not in allowed.get(c, set()))
    measured = [n for n in strict if not (n.startswith("useless ") and not useful.get(n[len("useless "):], True))]
    return {"detected": sum((kind, c) in names for c, kind in expected.items()), "of": len(expected),
            "false_alarms": len(strict), "measured_false_alarms": len(measured), "false_names": strict}


def run(datasets: tuple[str, ...], seed: int) -> list[dict[str, Any]]:
    """One row per data set and method: ``dataset``, ``method``, ``detected``, ``of``, ``false_alarms``,
    ``false_names`` and ``seconds``; ``sentiment`` is left out when its folder is not there."""
    from data_engine.bench.datasets import sentiment_dir

    rows = []
    for name in datasets:
        if name == "sentiment" and sentiment_dir() is None:
            continue
        frame, y, schema, regression, known = load(name)
        frame, y, schema = plant(frame, y, schema, regression, seed)
        methods = {"engine": lambda: engine_names(frame, y, schema, regression, seed),
                   "naive": lambda: naive_names(frame, y, schema, regression, seed)}
        if not regression:
            methods["cleanlab"] = lambda: cleanlab_names(frame, y, schema)
        found = {}
        for method, find in methods.items():
            start = time.perf_counter()
            found[method] = (find(), round(time.perf_counter() - start, 1))
        named = {c for names, _ in found.values() for kind, c in names if kind == "useless"}
        constant = {c for c in schema if frame[c].nunique(dropna=False) <= 1}
        useful = drop_costs(frame, y, schema, regression, named - set(DETECT) - set(known) - constant, seed)
        for method, (names, seconds) in found.items():
            kinds = {"shortcut"} if method == "cleanlab" else {"shortcut", "useless", "identifier"}
            rows.append({"dataset": name, "method": method, **score(names, kinds, known, constant, useful), "seconds": seconds})
    return rows


def cmd_bench_columns(args: argparse.Namespace, home: Home) -> int:
    """Print, per data set, each method's detected planted columns and its false alarms."""
    rows = run(tuple(d.strip() for d in args.datasets.split(",") if d.strip()), args.seed)
    print(f"shortcut / useless / identifier columns, planted leak, noise, row_id and uuid (seed {args.seed}); "
          "cleanlab: shortcuts only")
    print(f"  {'data set':<14} {'method':<9} {'detected':>9} {'false alarms':>13} {'measured':>9} {'seconds':>8}  "
          "false alarms named (strict)")
    for r in rows:
        named = ", ".join(r["false_names"][:6]) + (f", ... ({len(r['false_names']) - 6} more)"
                                                   if len(r["false_names"]) > 6 else "")
        print(f"  {r['dataset']:<14} {r['method']:<9} {r['detected']:>5} / {r['of']} {r['false_alarms']:>13} "
              f"{r['measured_false_alarms']:>9} {r['seconds']:>8}  {named}")
    return 0


def register_bench() -> None:
    """Register ``bench columns`` with the ``bench`` command group."""
    from data_engine.commands.bench import add_benchmark

    add_benchmark("columns", "shortcut, useless and identifier columns named on held-out sets with planted ones, "
                  "against a univariate test at 0.05 and cleanlab's spurious-correlation score", add_arguments,
                  cmd_bench_columns)
