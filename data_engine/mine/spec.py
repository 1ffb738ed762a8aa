"""Model specs: which members a model has, by name, per modality (resolved from the config by
:func:`data_engine.mine.models.resolve_spec`, against the registry of members).

A model spec is ``"auto"`` or one or more member names joined by ``+`` (``"hgb"``,
``"linear+knn"``). More than one member means a soft-voting ensemble: the members' predicted
probabilities are mixed, with weights that maximise the likelihood of the given labels out of
fold (:func:`data_engine.tasks.oof.mixture_weights`). One model family's view of noisy labels is rarely
enough, and no one family wins everywhere: with 20 % flipped labels, cleanlab's F1 on digits was
0.92 with logistic regression, 0.93 with gradient boosting, 0.96 with kNN and 0.955 with the
weighted three; on the generated tabular set linear 0.87, boosting 0.65, kNN 0.65, weighted 0.86."""

from __future__ import annotations

import hashlib
import json

from dataclasses import dataclass


# Bump when a member's construction changes: stored predictions made by an older build are stale.
REGISTRY_VERSION = 2


# Members of "auto", per modality, chosen by `data-engine bench detect` (numbers in docs/mining.md).
AUTO_MEMBERS: dict[str, tuple[str, ...]] = {
    "tabular": ("hgb", "linear", "knn"),
    "image": ("hgb", "linear", "knn"),
    "text": ("linear", "nb"),
}


# With a pretrained text embedding (e5-small), "auto" on text adds the linear model on it to the
# TF-IDF members, mixed by the out-of-fold likelihood weights. On sentiment sentences with 20 %
# flipped labels the label-flag F1 rose from 0.589 to the figure in docs/mining.md.
AUTO_EMBEDDING_MEMBERS: dict[str, tuple[str, ...]] = {
    "text": ("embedding", "linear", "nb"),
}


# The modality's clean-label specialist: a candidate for the served model ([retrain] model = "auto"
# scores every candidate out of fold and trains the best, data_engine.mine.candidates), and the
# default served spec where no candidates are scored (mining scoring unlabeled rows before a
# champion exists). On the digits (every digit predicted by a model that did not train on it, true
# labels) the RBF SVM reached 0.990 on clean labels against 0.974 for the mining ensemble.
SERVED_AUTO: dict[str, tuple[str, ...]] = {
    "image": ("svm",),
}


# An SVM's training cost grows with the square of the rows: above this many, "auto" serves the
# mining ensemble instead.
SVM_MAX_ROWS = 20_000


# Above this many labeled rows "auto" leaves out the kNN member: exact neighbour search costs
# N x N distance computations (measured in docs/mining.md, "Neighbour search").
KNN_MAX_ROWS = 50_000


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model choice: its members and the settings that change its predictions."""

    members: tuple[str, ...]
    modality: str
    seed: int = 0
    # The embedder the "embedding" member reads (a name of data_engine.mine.embedders.EMBEDDERS).
    embedding: str = "tfidf"
    # The user's trainer the "command" member runs ([model] command, timeout_s).
    command: tuple[str, ...] = ()
    timeout_s: float = 3600.0
    # Who makes the trainer's out-of-fold predictions ([model] out_of_fold): "engine" or "trainer".
    out_of_fold: str = "engine"

    @property
    def key(self) -> str:
        """The string stored with predictions; equal keys mean interchangeable predictions."""
        emb = f"/emb={self.embedding}" if "embedding" in self.members else ""
        # The command is the trainer's identity to the engine (its code is not), so a changed command
        # never re-uses the stored predictions of another.
        cmd = f"/cmd={hashlib.sha256(json.dumps(self.command).encode()).hexdigest()[:12]}" if self.command else ""
        # The trainer's own out-of-fold predictions are not interchangeable with the engine's K fits.
        oof = "/oof=trainer" if self.command and self.out_of_fold == "trainer" else ""
        return f"{'+'.join(self.members)}/{self.modality}/seed={self.seed}{emb}{cmd}{oof}/v{REGISTRY_VERSION}"
