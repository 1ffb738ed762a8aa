"""Drift of a landed training batch against the training data in force, computed once it is stored
(kept by :mod:`data_engine.ingest.batch_drift`).

What is compared (the tests are :func:`data_engine.ingest.drift.batch_drift`'s, Holm-corrected across
all of them): every numeric and categorical input column; for a labeled batch, the labels (a class or
a number as one column; a tag, span or box set as one 1/0 column per tag, entity type or box class:
whether each example carries it, :meth:`~data_engine.tasks.Task.carried_tags`, since a set is nearly
unique per row and would bring "new categories" in every batch; the two rates of each are compared by
Fisher's exact test, and a class of ``[dataset] classes`` training never carried is named in
``new_tags``); when a
champion is deployed, its predictions on both sides, summarised by the task
(:meth:`~data_engine.tasks.Task.prediction_summary`): the predicted class (a category) or value; for tag
sets, whether each tag is predicted (0/1: the predicted rate of each tag); for span and box sets, how
many entities of each type per text or boxes of each class per image, and how many in all. Those
counts are numeric columns (the two-sample Kolmogorov-Smirnov test, conservative on counts' ties:
a tie only makes its p-value larger), Holm-corrected with every other column. The domain
classifier reads the input columns and, for text columns, their TF-IDF embedding; for an image file
column, the modality's own embedding (by default the classical image embedding: HOG, histograms,
thumbnail; from the warehouse's embedding store), so an image-file data set, which has no other column, is compared on
what its images look like. A gold batch is not compared: gold is not training data. Here, above ``mine`` and
``ship`` in the layers, because it reads the champion and the engine's embedding.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from data_engine.ingest.batch_drift import drift_due, store_drift
from data_engine.ingest.drift import MIN_DOMAIN_ROWS, batch_drift, numeric_identifiers, sample_rows
from data_engine.ingest.result import IngestResult
from data_engine.store.home import Home
from data_engine.store.schema import stored_columns

# The name under which the champion's predictions are compared and reported.
PREDICTION_COLUMN = "champion prediction"
# Tasks whose label (and prediction) is one value a test reads: a class, or a number. A tag set or
# a list of spans is nearly unique per row: every batch would bring "new categories".
LABEL_KINDS = {"classification": "categorical", "regression": "numeric"}


def check_batch_drift(con: duckdb.DuckDBPyConnection, home: Home, result: IngestResult) -> dict[str, Any] | None:
    """The ``drift`` object of a just-ingested training batch (stored in ``batch_drift``), or None when
    there is nothing to compare: a gold, duplicate, rejected or already-known batch, or no training
    data in force outside this batch yet. Rows of a drifted batch get their domain-classifier score
    in ``drift_rows``. A batch of texts or images alone (no label, no champion) too small for the
    domain classifier is not compared, and says so (:func:`skipped_drift`)."""
    if not drift_due(con, result):
        return None
    from data_engine.store.dataset import load_examples
    from data_engine.tasks import task_for

    cfg = home.config
    ds = cfg.dataset
    task = task_for(ds)
    train = load_examples(con, ds, subset="train")
    reference = train[train["batch_id"] != result.batch_id]
    unlabeled = load_examples(con, ds, subset="unlabeled")
    # The batch's examples in force: labeled and unlabeled (a discarded one is in neither).
    batch = pd.concat([train[train["batch_id"] == result.batch_id],
                       unlabeled[unlabeled["batch_id"] == result.batch_id]], ignore_index=True)
    if reference.empty or batch.empty:
        return None
    types = stored_columns(con)
    inputs = [c for c in ds.input_columns if types.get(c) in ("numeric", "categorical")]
    # Judged on every training row in stored order, before sampling (a sample of a sequence is not one).
    identifiers = numeric_identifiers(reference, inputs)
    # Sampled here already (batch_drift samples the same way): the embedding and the champion's
    # predictions then cost max_rows rows, not the whole training data.
    reference = sample_rows(reference, cfg.drift.max_rows, seed=0)
    batch = sample_rows(batch, cfg.drift.max_rows, seed=0)
    texts = [c for c in ds.input_columns if types.get(c) == "text"]
    images = [c for c in ds.input_columns if types.get(c) == "image"]
    ref, new = reference[inputs].copy(), batch[inputs].copy()
    kind = LABEL_KINDS.get(task.name)
    if kind and batch["label"].notna().any():
        ref[ds.label_column], new[ds.label_column] = _as_kind(reference["label"], kind), _as_kind(batch["label"], kind)
    rates: dict[str, str] = {}
    if task.column_labels == "tags" and batch["label"].notna().any():
        from data_engine.store.dataset import load_classes

        classes = load_classes(con)
        names = [f"{ds.label_column}: {c}" for c in classes]
        rates = dict(zip(names, map(str, classes)))
        for side, frame in ((ref, reference), (new, batch)):
            for name, values in _carried(task, frame["label"], classes, names).items():
                side[name] = values
    predicted = _champion_predictions(con, home, reference, batch)
    for name, (before, now) in (predicted or {}).items():
        ref[name], new[name] = before, now
    if not len(ref.columns) and not texts and not images:
        return None
    embedding = _embedding(con, cfg, reference, batch, texts, images)
    if not len(ref.columns) and embedding is None:  # only texts or images, too few rows to embed them
        drift = skipped_drift(len(reference), len(batch), texts + images)
        store_drift(con, result.batch_id, None, drift, batch["example_id"])
        return drift
    report = batch_drift(ref, new, cfg.drift, domain_columns=inputs, embedding=embedding, rates=rates,
                         identifiers=identifiers)
    labels_compared = any(c == ds.label_column or c.startswith(f"{ds.label_column}: ") for c in new.columns)
    new_tags = [t for c in report.per_column if c.column in rates for t in c.new_categories]
    drift = {**report.to_json(), "labels_compared": labels_compared, "new_tags": new_tags,
             "predictions_compared": predicted is not None, "alpha": cfg.drift.alpha, "auc_threshold": cfg.drift.auc}
    store_drift(con, result.batch_id, report, drift, batch["example_id"])
    return drift


def skipped_drift(n_reference: int, n_batch: int, columns: list[str]) -> dict[str, Any]:
    """The ``drift`` object of a batch left uncompared because only the domain classifier could read it
    (``columns``: its text or image columns, no label or champion prediction to test) and one side has
    fewer than :data:`~data_engine.ingest.drift.MIN_DOMAIN_ROWS` rows: ``skipped`` says why; not drifted,
    nothing named."""
    side = f"{n_batch} rows in the batch" if n_batch < MIN_DOMAIN_ROWS else f"{n_reference} training rows"
    reason = (f"{side}; the domain classifier on the embedding of {', '.join(columns)} needs at least "
              f"{MIN_DOMAIN_ROWS} a side (no label or champion prediction to compare)")
    return {"drifted": False, "skipped": reason, "columns": [], "auc": None, "n_reference": n_reference,
            "n_batch": n_batch, "per_column": [], "new_tags": [], "labels_compared": False,
            "predictions_compared": False}


def _embedding(con: duckdb.DuckDBPyConnection, cfg: Any, reference: pd.DataFrame, batch: pd.DataFrame,
               texts: list[str], images: list[str]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """Text columns as the engine's classical embedding (TF-IDF and SVD, fitted on both sides
    together; :class:`~data_engine.mine.embedders.tfidf.TfidfEmbedder`) and the image file columns
    as the modality's own embedding (:func:`~data_engine.mine.embedders.features.own_embedding`: by
    default the classical image embedding, 428 values per image, read from the warehouse's embedding
    store and stored there when new, so training images are embedded once, not at every batch), side
    by side, indexed like the frames; None without a text or image column. A text or an image is not
    a value a per-column test reads: only the domain classifier sees it."""
    if not (texts or images) or min(len(reference), len(batch)) < MIN_DOMAIN_ROWS:
        # Only the domain classifier reads the embedding, and it needs this many rows a side; a
        # few short texts may share no character n-gram, which TF-IDF's min_df refuses with an error.
        return None
    import numpy as np

    from data_engine.mine.embedders import configured_embedding
    from data_engine.mine.embedders.features import own_embedding
    from data_engine.mine.embedders.tfidf import TfidfEmbedder

    parts = []
    if texts:
        both = pd.concat([reference[texts], batch[texts]]).fillna("").astype(str).reset_index(drop=True)
        parts.append(TfidfEmbedder(schema={c: "text" for c in texts}).fit_transform(both, texts))
    if images:
        _, vectors = own_embedding(con, [reference, batch], dict.fromkeys(images, "image"), configured_embedding(cfg))
        parts.append(np.vstack(vectors))
    vectors = np.hstack(parts)
    names = [f"embedding {i}" for i in range(vectors.shape[1])]
    n = len(reference)
    return (pd.DataFrame(vectors[:n], index=reference.index, columns=names),
            pd.DataFrame(vectors[n:], index=batch.index, columns=names))


def _carried(task: Any, labels: pd.Series, classes: list[str], names: list[str]) -> pd.DataFrame:
    """Whether each labeled row of ``labels`` (stored tag, span or box sets) carries each of ``classes``:
    1.0 / 0.0 per class (n, K), NaN for an unlabeled row; indexed like ``labels``, the columns ``names``."""
    out = pd.DataFrame(float("nan"), index=labels.index, columns=names, dtype=float)
    known = labels.notna().to_numpy()
    if known.any():
        carried = task.carried_tags(task.encode(labels[known].astype(str).tolist(), classes), classes)
        out.loc[known] = (carried > 0).astype(float)
    return out


def _as_kind(values: pd.Series, kind: str) -> pd.Series:
    """Labels or predictions as the tests read them: class names as categories, numbers as numbers."""
    return values.astype(object) if kind == "categorical" else pd.to_numeric(values, errors="coerce")


def prediction_column(name: str) -> str:
    """The drift column of the champion's prediction summary ``name`` (:meth:`~data_engine.tasks.Task.prediction_summary`):
    ``champion prediction`` for the one value, ``champion prediction: NAME`` for a tag, type or class."""
    return f"{PREDICTION_COLUMN}: {name}" if name else PREDICTION_COLUMN


def _champion_predictions(con: duckdb.DuckDBPyConnection, home: Home, reference: pd.DataFrame,
                          batch: pd.DataFrame) -> dict[str, tuple[pd.Series, pd.Series]] | None:
    """The deployed champion's predictions on the training rows and on the batch's rows as the task
    summarises them (:meth:`~data_engine.tasks.Task.prediction_summary`): drift column name ->
    (training values, batch values), each indexed like its frame; None without a champion."""
    from data_engine.ship.registry import current_champion, load_model

    champion = current_champion(con)
    if champion is None:
        return None
    from data_engine.mine.embedders.features import with_embedding
    from data_engine.ship.scoring import candidate_input
    from data_engine.ship.fitting import limited_threads
    from data_engine.store.dataset import load_classes
    from data_engine.tasks import task_for

    cfg = home.config
    task = task_for(cfg.dataset)
    classes = load_classes(con) or list(champion.classes)
    model = load_model(home, champion)
    sides = []
    for frame in (reference, batch):
        rows, _ = with_embedding(con, cfg, frame.reset_index(drop=True), champion.input_schema)
        with limited_threads():
            probs = task.predict(model, candidate_input(rows, champion), classes)
        sides.append({prediction_column(name): pd.Series(values, index=frame.index)
                      for name, values in task.prediction_summary(probs, classes).items()})
    return {name: (sides[0][name], sides[1][name]) for name in sides[0]}


def drift_plot(drift: dict[str, Any]) -> bytes:
    """A PNG bar chart of a ``drift`` object: -log10 of each column's Holm-adjusted p-value, drifted
    columns in red, the ``alpha`` line dashed, the domain classifier's AUC in the title."""
    import numpy as np

    from data_engine.mine.noise import png_plot

    per = drift["per_column"]
    heights = [-np.log10(max(c["p_adjusted"], 1e-300)) for c in per]

    def draw(fig: Any, ax: Any) -> None:
        ax.bar(range(len(per)), heights, color=["tab:red" if c["drifted"] else "tab:gray" for c in per])
        ax.axhline(-np.log10(drift["alpha"]), linestyle="--", color="black", linewidth=1,
                   label=f"alpha = {drift['alpha']:g} (Holm)")
        # "champion prediction: TAG" shortened, or every prediction column reads the same 16 characters.
        names = [c["column"].replace(f"{PREDICTION_COLUMN}: ", "predicted ") for c in per]
        ax.set_xticks(range(len(per)), [n[:20] for n in names], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("-log10 adjusted p")
        auc = "n/a" if drift["auc"] is None else f"{drift['auc']:.2f}"
        ax.set_title(f"Drift from the training data in force (domain classifier AUC {auc})", fontsize=10)
        ax.legend(fontsize=8)

    return png_plot((min(12.0, 3.0 + 0.5 * len(per)), 3.5), draw)
