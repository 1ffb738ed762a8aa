"""The trivial baseline a first model must beat on gold: what a model that learnt nothing from the
inputs answers, read off the training labels alone. The gate (:mod:`data_engine.ship.gate`) scores
it on the same gold examples with the same metric and refuses a first model that is not better.

Each task names its kind (:attr:`data_engine.tasks.base.Task.baseline_kind`):

* ``"majority"``: every example gets the training labels' most common label (one class per example:
  the majority class; a tie goes to the first label in sorted order, so the choice is reproducible);
* ``"tag_majority"``: every example gets the tags more than half of the training examples carry
  (usually none: the empty set), each tag's own majority;
* ``"mean"``: every example gets the training labels' mean (numbers);
* ``"empty"``: every example gets the empty set (boxes, spans: a detector or tagger that finds nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Each kind's name in the gate's words ("... is not above the majority-class baseline's 0.3820").
BASELINES = {"majority": "majority-class baseline", "tag_majority": "per-tag majority baseline",
             "mean": "training-mean baseline", "empty": "empty-prediction baseline"}


@dataclass(frozen=True)
class TrivialBaseline:
    """One label, in the stored spelling, that the baseline predicts for every example; ``name`` says
    which baseline it is (a value of :data:`BASELINES`)."""

    kind: str
    name: str
    label: str

    def predictions(self, n: int) -> np.ndarray:
        """The baseline's answers for ``n`` examples: shape (n,), object, each :attr:`label`."""
        import numpy as np

        return np.full(n, self.label, dtype=object)


def trivial_baseline(kind: str, train_labels: Sequence[str]) -> TrivialBaseline:
    """The baseline of ``kind`` (a key of :data:`BASELINES`) from the stored training labels (n,), n >= 1.

    scikit-learn's dummy estimators fit it (they ignore the inputs by design):
    ``DummyClassifier(strategy="most_frequent")`` on the labels (a tie goes to the first of the sorted
    classes) or, for tags, on the (n, K) tag indicator matrix, one output per tag (a tag carried by
    exactly half keeps 0, the first class, so only a strict majority carries it);
    ``DummyRegressor(strategy="mean")`` on the numbers (``np.average``).

    Raises ValueError for an unknown kind or no training labels (a model is never trained on none),
    and for a ``"mean"`` label that is not a number."""
    if kind not in BASELINES:
        raise ValueError(f"unknown trivial baseline {kind!r}; expected one of {', '.join(BASELINES)}")
    labels = [str(v) for v in train_labels]
    if not labels and kind != "empty":
        raise ValueError("a trivial baseline needs training labels")
    if kind == "empty":
        return TrivialBaseline(kind, BASELINES[kind], "[]")  # the stored spelling of an empty box set and span set
    import numpy as np
    from sklearn.dummy import DummyClassifier, DummyRegressor

    inputs = np.zeros((len(labels), 1))  # the dummies read only the labels; X just gives the row count
    if kind == "majority":
        label = str(DummyClassifier(strategy="most_frequent").fit(inputs, np.array(labels, dtype=object))
                    .predict(inputs[:1])[0])
    elif kind == "tag_majority":
        from data_engine.tasks import tagsets

        tags = sorted({tag for v in labels for tag in tagsets.tags_of(v)})
        if not tags:  # every training example untagged: no output to fit, the empty set
            label = "[]"
        else:
            fitted = DummyClassifier(strategy="most_frequent").fit(inputs, tagsets.encode(labels, tags))
            label = tagsets.decode(fitted.predict(inputs[:1]).reshape(1, -1), tags)[0]
    else:
        # repr keeps every digit the metrics read back.
        label = repr(float(DummyRegressor(strategy="mean").fit(inputs, np.array([float(v) for v in labels]))
                           .constant_.ravel()[0]))
    return TrivialBaseline(kind, BASELINES[kind], label)
