"""The model members: scikit-learn estimators per modality, by name, built from the column schema.

Which members a model has is decided in :mod:`data_engine.mine.spec`.

Every estimator follows the scikit-learn contract (``clone``, ``fit``, ``predict_proba``), so
out-of-fold probabilities, retraining and serving all use the same object.

Columns arrive typed by the warehouse schema: ``numeric`` (float with NaN), ``categorical``
(strings with None) and ``text``. A "categorical" feature column may really be short free text
(a product title, a comment), so the linear member reads categorical columns both one-hot encoded
and as word tokens: for a true category the tokens repeat the one-hot code, for free text they
carry the signal one-hot encoding would lose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from data_engine.errors import EngineError

# fill_text / fill_category are re-exported: served artifacts written before they moved name them here.
from data_engine.mine.features import MIN_CATEGORY_COUNT, fill_category, fill_text  # noqa: F401
from data_engine.mine.features import numeric_block as _numeric_block
from data_engine.mine.features import one_hot as _one_hot
from data_engine.mine.features import text_features as _text_features
from data_engine.mine.spec import (
    AUTO_EMBEDDING_MEMBERS,
    AUTO_MEMBERS,
    KNN_MAX_ROWS,
    SERVED_AUTO,
    SVM_MAX_ROWS,
    ModelSpec,
)
from data_engine.plugins import Registry

# numpy and scikit-learn are imported where a model is built: commands such as `ingest` must start
# without them.
from data_engine.store.config import EngineConfig, ModelConfig
from data_engine.tasks import Task

# Inverse regularisation of the SVM: best of 1, 3, 10 on clean digits (0.985, 0.989, 0.990).
SVM_C = 10.0


# Folds of the SVM's Platt calibration (its probabilities feed the gate, serving and review).
SVM_CALIBRATION_FOLDS = 3


# Inverse regularisation of the linear member. Dense standardised features (pixels, numbers)
# with noisy labels need strong regularisation; sparse TF-IDF text needs much less.
LINEAR_C_DENSE = 0.1


LINEAR_C_TEXT = 1.0


# Inverse regularisation of the linear model on a pretrained embedding: LogisticRegression(C=0.3)
# over e5-small vectors gave label-flag F1 0.858-0.868 on sentiment sentences (docs/mining.md).
LINEAR_C_EMBEDDING = 0.3


# Neighbours voting in the kNN member: enough that one flipped neighbour barely moves the vote.
KNN_NEIGHBOURS = 20


# HistGradientBoosting accepts at most 255 categories per feature (one bin is kept for missing).
MAX_HGB_CATEGORIES = 250


@dataclass(frozen=True)
class Schema:
    """Input columns by kind, in config order."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: tuple[str, ...]
    # Vectors the user supplies (one list per row); only the "embedding" member reads them.
    vector: tuple[str, ...] = ()
    # Columns of image file paths, read through the ``image`` embedder.
    image: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, schema: Mapping[str, str]) -> "Schema":
        """Build from ``{column: 'numeric' | 'categorical' | 'text' | 'vector' | 'image'}``; raise EngineError on a bad kind."""
        bad = {c: k for c, k in schema.items() if k not in KINDS}
        if bad:
            col, kind = next(iter(bad.items()))
            raise EngineError(f"input column {col!r} has type {kind!r}; expected {', '.join(KINDS[:-1])} or {KINDS[-1]}")
        pick = lambda kind: tuple(c for c, k in schema.items() if k == kind)  # noqa: E731
        return cls(*(pick(kind) for kind in KINDS))

    @property
    def columns(self) -> tuple[str, ...]:
        """All input columns."""
        return self.numeric + self.categorical + self.text + self.vector + self.image

    def as_mapping(self) -> dict[str, str]:
        """``{column: kind}``, the inverse of :meth:`from_mapping`."""
        return {c: kind for kind in KINDS for c in getattr(self, kind)}


# The column kinds a model reads, in the order of :class:`Schema`'s fields.
KINDS = ("numeric", "categorical", "text", "vector", "image")


def resolve_spec(name: str, modality: str, *, seed: int = 0, n_rows: int | None = None, served: bool = False,
                 key: str = "mining.model", embedding: str = "tfidf", trainer: ModelConfig | None = None) -> ModelSpec:
    """Turn the config's ``mining.model`` (or, with ``served``, ``retrain.model``) into a :class:`ModelSpec`.

    ``name`` is ``"auto"`` (the modality's default ensemble, without kNN above
    :data:`KNN_MAX_ROWS` labeled rows; for the served model :data:`SERVED_AUTO` first, up to
    :data:`SVM_MAX_ROWS`) or member names joined by ``+``. ``key`` names the setting in errors.
    ``embedding``: the resolved ``[mining] embedding`` (a registry name): a pretrained one puts
    the ``embedding`` member into "auto" (:data:`AUTO_EMBEDDING_MEMBERS`); user-supplied vectors
    (``column``) make "auto" the linear model on them. ``trainer``: the config's ``[model]``; with
    ``trainer = "command"`` the model is the user's trainer alone (member "command",
    :class:`data_engine.trainers.command.CommandClassifier`), whatever ``name`` says.
    """
    if trainer is not None and trainer.trainer == "command":
        return ModelSpec(("command",), modality, seed, embedding, tuple(trainer.command), trainer.timeout_s,
                         trainer.out_of_fold)
    if name == "auto" and embedding == "column":
        return ModelSpec(("embedding",), modality, seed, embedding)
    if name == "auto" and embedding != "tfidf" and modality in AUTO_EMBEDDING_MEMBERS:
        return ModelSpec(AUTO_EMBEDDING_MEMBERS[modality], modality, seed, embedding)
    if name == "auto" and served and modality in SERVED_AUTO and (n_rows is None or n_rows <= SVM_MAX_ROWS):
        return ModelSpec(SERVED_AUTO[modality], modality, seed, embedding)
    if name == "auto":
        members = AUTO_MEMBERS[modality]
        if n_rows is not None and n_rows > KNN_MAX_ROWS and len(members) > 1:
            members = tuple(m for m in members if m != "knn")
        return ModelSpec(members, modality, seed, embedding)
    members = tuple(m.strip() for m in name.split("+"))
    unknown = [m for m in members if m not in MEMBERS]
    if unknown or not members:
        raise EngineError(
            f"{key} = {name!r}: unknown model {unknown[0] if unknown else ''!r}; use 'auto' or members "
            f"joined by '+' from: {', '.join(MEMBERS)}"
        )
    if len(set(members)) != len(members):
        raise EngineError(f"{key} = {name!r}: a member is listed twice")
    return ModelSpec(members, modality, seed, embedding)


def build_members(spec: ModelSpec, schema: Schema) -> dict[str, Any]:
    """One unfitted estimator per member of ``spec``, by member name."""
    if not schema.columns:
        raise EngineError("the dataset has no input columns to learn from")
    return {m: MEMBERS.get_piece(m)(schema, spec) for m in spec.members}


def build_estimator(spec: ModelSpec, schema: Schema, *, weights: Mapping[str, float] | None = None,
                    task: Task | None = None) -> Any:
    """An unfitted estimator for ``spec`` reading the columns of ``schema`` from a DataFrame.

    Several members make a soft-voting ensemble; ``weights`` (member -> weight, e.g. the
    out-of-fold mixture weights of :func:`data_engine.tasks.oof.mixture_weights`) default to equal.
    ``task``: the dataset's task; for numbers (``estimator_kind == "regressor"``) the members are its
    regressors (:meth:`~data_engine.tasks.Task.members_for`), averaged with the same weights, and the
    model carries the interval of its out-of-fold residuals
    (:class:`~data_engine.tasks.regression_model.IntervalRegressor`).
    """
    if task is not None and task.estimator_kind == "regressor":
        return _regression_estimator(spec, schema, weights, task)
    built = list(build_members(spec, schema).items())
    if len(built) == 1:
        return built[0][1]
    from sklearn.ensemble import VotingClassifier

    w = None if weights is None else [float(weights.get(m, 0.0)) for m, _ in built]
    # Members run one after another: parallelism is spent on folds (data_engine.tasks.oof) instead.
    return VotingClassifier(built, voting="soft", weights=w, n_jobs=None)



def _regression_estimator(spec: ModelSpec, schema: Schema, weights: Mapping[str, float] | None, task: Task) -> Any:
    """:func:`build_estimator` for numbers: the task's regressors, averaged, with their interval."""
    from sklearn.ensemble import VotingRegressor

    from data_engine.tasks.regression_model import IntervalRegressor

    built = list(task.members_for(build_members(spec, schema)).items())
    if len(built) == 1:
        return IntervalRegressor(built[0][1], seed=spec.seed)
    w = None if weights is None else [float(weights.get(m, 0.0)) for m, _ in built]
    return IntervalRegressor(VotingRegressor(built, weights=w, n_jobs=None), seed=spec.seed)


def build_model(cfg: EngineConfig, schema: Mapping[str, str], *, n_rows: int | None = None) -> tuple[Any, str]:
    """The served model of ``[retrain] model``, unfitted and adapted to the dataset's task
    (:meth:`~data_engine.tasks.Task.members_for`), and its spec key (used by retraining).

    ``schema``: ``{input column: 'numeric' | 'categorical' | 'text'}`` as fixed in the warehouse;
    ``n_rows``: the number of training rows, if known (large sets leave kNN and the SVM out of "auto").
    """
    from data_engine.mine.embedders import configured_embedding
    from data_engine.tasks import task_for

    spec = resolve_spec(cfg.retrain.model, cfg.dataset.modality, seed=cfg.mining.seed, n_rows=n_rows, served=True,
                        key="retrain.model", embedding=configured_embedding(cfg), trainer=cfg.model)
    task = task_for(cfg.dataset)
    # Numbers: build_estimator builds the task's regressors (with their interval); members_for then
    # leaves a regressor as it is. Other tasks adapt the built classifier (tags: one-vs-rest).
    estimator = task.members_for({"served": build_estimator(spec, Schema.from_mapping(schema), task=task)})
    return estimator["served"], spec.key


def _linear(schema: Schema, spec: ModelSpec) -> Any:
    """Standardised numbers, one-hot + word tokens of categories, TF-IDF of text; logistic regression."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    parts: list[tuple[str, Any, Any]] = []
    if schema.numeric:
        parts.append(("num", _numeric_block(scale=True), list(schema.numeric)))
    for i, col in enumerate(schema.categorical):
        parts.append((f"cat{i}", _one_hot(sparse=True), [col]))
        parts.append((f"tok{i}", _text_features(char=False), col))
    for i, col in enumerate(schema.text):
        parts.append((f"text{i}", _text_features(char=True), col))
    parts += _image_parts(schema, scale=True)
    c = LINEAR_C_TEXT if schema.text else LINEAR_C_DENSE
    features = ColumnTransformer(parts, sparse_threshold=0.3)
    return Pipeline([("features", features), ("clf", LogisticRegression(C=c, max_iter=1000))])


def _hgb(schema: Schema, spec: ModelSpec) -> Any:
    """Gradient-boosted trees on numbers (NaN native) and categories (native categorical splits)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OrdinalEncoder

    from data_engine.mine.tiny import SmallDataHistGradientBoosting

    if not (schema.numeric or schema.categorical or schema.image):
        raise EngineError("model 'hgb' needs numeric, categorical or image columns; use 'linear' for text")
    parts: list[tuple[str, Any, Any]] = []
    if schema.categorical:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                 encoded_missing_value=np.nan, min_frequency=MIN_CATEGORY_COUNT,
                                 max_categories=MAX_HGB_CATEGORIES)
        parts.append(("cat", encoder, list(schema.categorical)))
    if schema.numeric:
        parts.append(("num", "passthrough", list(schema.numeric)))
    image = _image_parts(schema, scale=False)
    parts += image
    from data_engine.mine.embedders.image import DIMENSIONS

    is_cat = [True] * len(schema.categorical) + [False] * (len(schema.numeric) + DIMENSIONS * len(image))
    # Early stopping on a held-out tenth: noisy labels are fitted late, and it halves the cost.
    clf = SmallDataHistGradientBoosting(categorical_features=is_cat, early_stopping=True, random_state=spec.seed)
    return Pipeline([("features", ColumnTransformer(parts)), ("clf", clf)])


def _distance_features(schema: Schema, spec: ModelSpec, member: str) -> Any:
    """The dense space the distance-based members (kNN, SVM) read: scaled numbers (raw scale for
    image pixels) and one-hot categories."""
    from sklearn.compose import ColumnTransformer

    if not (schema.numeric or schema.categorical or schema.image):
        raise EngineError(f"model {member!r} needs numeric, categorical or image columns; use 'linear' for text")
    # Pixels share one unit: standardising would blow up near-constant border pixels.
    parts: list[tuple[str, Any, Any]] = []
    if schema.numeric:
        parts.append(("num", _numeric_block(scale=spec.modality != "image"), list(schema.numeric)))
    if schema.categorical:
        parts.append(("cat", _one_hot(sparse=False), list(schema.categorical)))
    parts += _image_parts(schema, scale=True)
    return ColumnTransformer(parts, sparse_threshold=0.0)


def _image_parts(schema: Schema, *, scale: bool) -> list[tuple[str, Any, Any]]:
    """ColumnTransformer parts reading each image column through the ``image`` embedder."""
    if not schema.image:
        return []
    from data_engine.mine.embedders.image import image_block

    return [(f"image{i}", image_block(scale), [col]) for i, col in enumerate(schema.image)]


def _knn(schema: Schema, spec: ModelSpec) -> Any:
    """k nearest neighbours in the scaled numeric + one-hot space (raw scale for image pixels)."""
    from sklearn.pipeline import Pipeline

    from data_engine.mine.tiny import SmallDataKNeighbors

    return Pipeline([("features", _distance_features(schema, spec, "knn")),
                     ("clf", SmallDataKNeighbors(n_neighbors=KNN_NEIGHBOURS))])


def _svm(schema: Schema, spec: ModelSpec) -> Any:
    """An RBF support vector machine on the kNN member's features, with Platt-calibrated probabilities."""
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from data_engine.mine.tiny import SmallDataCalibratedClassifierCV

    # ensemble=False: one SVM on all rows, its decision values calibrated out of fold (SVC's own
    # probability=True is deprecated in scikit-learn 1.9 in favour of exactly this).
    clf = SmallDataCalibratedClassifierCV(SVC(C=SVM_C, gamma="scale"), method="sigmoid", cv=SVM_CALIBRATION_FOLDS,
                                 ensemble=False)
    return Pipeline([("features", _distance_features(schema, spec, "svm")), ("clf", clf)])


def _nb(schema: Schema, spec: ModelSpec) -> Any:
    """Multinomial naive Bayes on word TF-IDF of the text and categorical columns."""
    from sklearn.compose import ColumnTransformer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import Pipeline

    cols = schema.text + schema.categorical
    if not cols:
        raise EngineError("model 'nb' needs a text or categorical column")
    parts = [(f"tok{i}", _text_features(char=False), c) for i, c in enumerate(cols)]
    return Pipeline([("features", ColumnTransformer(parts)), ("clf", MultinomialNB(alpha=0.5))])


def _embedding(schema: Schema, spec: ModelSpec) -> Any:
    """Logistic regression on the embedding of ``spec.embedding`` (standardised unless the embedder's
    vectors are normalised). The first step embeds requests itself, so the fitted model serves alone."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from data_engine.mine.embedders.base import get_embedder
    from data_engine.mine.embedders.features import EmbeddingFeatures

    embedder = get_embedder(spec.embedding)
    cols = tuple(embedder.input_columns(schema.as_mapping()))
    if not cols:
        raise EngineError(f"model 'embedding': embedding {spec.embedding!r} finds no input column it can read")
    steps: list[tuple[str, Any]] = [("embed", EmbeddingFeatures(spec.embedding, cols))]
    if not embedder.normalised:
        steps.append(("scale", StandardScaler()))
    c = LINEAR_C_EMBEDDING if embedder.normalised else LINEAR_C_DENSE
    return Pipeline(steps + [("clf", LogisticRegression(C=c, max_iter=1000))])


def _command(schema: Schema, spec: ModelSpec) -> Any:
    """The user's trainer (``[model] trainer = "command"``), run through the file contract."""
    from data_engine.trainers.command import CommandClassifier

    if not spec.command:
        raise EngineError('model "command" is the user\'s trainer: set [model] trainer = "command" and command')
    return CommandClassifier(spec.command, spec.timeout_s,
                             manifest={"feature_columns": list(schema.columns), "column_kinds": schema.as_mapping()},
                             out_of_fold=spec.out_of_fold)


# The members by name: the built-ins (a builder ``(schema, spec) -> unfitted estimator`` each;
# "embedding" is a linear model on the vectors of ``[mining] embedding``) and those of the
# ``data_engine.members`` entry points.
MEMBERS: Registry[Callable[[Schema, ModelSpec], Any]] = Registry("model member", "data_engine.members")
for _name, _builder in (("hgb", _hgb), ("linear", _linear), ("knn", _knn), ("nb", _nb), ("svm", _svm),
                        ("embedding", _embedding), ("command", _command)):
    MEMBERS.register(_builder, _name)


# Width of the dense text space selection strategies measure distances in (LSA of the TF-IDF).
TEXT_SPACE_DIMENSIONS = 100


def feature_space(schema: Schema, modality: str) -> Any:
    """An unfitted transformer into the dense space the distance-based members read, for selection
    strategies when no pretrained embedding is present: scaled numbers (raw pixels for images),
    one-hot categories, text as L2-normalised LSA (truncated SVD of word TF-IDF), and image files
    through the ``image`` embedder, standardised."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    from data_engine.mine.components import CappedSVD

    parts: list[tuple[str, Any, Any]] = []
    if schema.numeric or schema.categorical:
        parts.append(("dense", _distance_features(Schema(schema.numeric, schema.categorical, ()),
                                                  ModelSpec((), modality), "selection"),
                      list(schema.numeric + schema.categorical)))
    for i, col in enumerate(schema.text):
        # Capped by the fitted vocabulary and rows: a column of a few distinct words has fewer terms than this.
        lsa = make_pipeline(_text_features(char=False), CappedSVD(TEXT_SPACE_DIMENSIONS, random_state=0), Normalizer())
        parts.append((f"text{i}", lsa, col))
    # Image files have no pixel columns: their distances are the image embedder's (as the kNN member's).
    parts += _image_parts(schema, scale=True)
    if not parts:
        raise EngineError("the dataset has no input columns to measure distances in")
    return ColumnTransformer(parts, sparse_threshold=0.0)
