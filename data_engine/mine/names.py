"""The config's names of mining's pluggable pieces, checked against their registries.

``[mining] detectors``, ``[review] weights`` (keyed by detector), ``[review] strategy``,
``[mining] embedding``, ``[dataset] task``, ``[mining] model`` and ``[retrain] model`` name pieces that the mine stage
owns: each is valid when its registry knows it (a built-in or an installed package's entry
point, :mod:`data_engine.plugins`). The store loads the config without knowing these names, so the
check runs here: when a home is set up (``init``) and before a mining run starts.
"""

from __future__ import annotations

from data_engine.errors import ConfigError, EngineError
from data_engine.mine.detectors import DETECTORS
from data_engine.mine.embedders import configured_embedding
from data_engine.mine.models import resolve_spec
from data_engine.mine.selection.base import STRATEGIES
from data_engine.store.config import EngineConfig
from data_engine.tasks import check_task, task_for


def check_names(cfg: EngineConfig) -> EngineConfig:
    """Return ``cfg`` after checking every plug-in name it holds against its registry.

    Raises :class:`ConfigError` naming the key (``mining.detectors[1] = 'vibes': unknown
    detector; known: ...``). Detector, strategy and member plug-ins are found in the installed
    entry-point metadata without being imported; an embedding plug-in is imported to read the
    modalities it embeds.
    """
    check_task(cfg.dataset)
    if cfg.gate.metric is not None:
        task = task_for(cfg.dataset)
        known = task.metric_names()
        if cfg.gate.metric not in known:
            raise ConfigError(f"gate.metric = {cfg.gate.metric!r}: not a metric of task {task.name!r} "
                              f"(one of {', '.join(map(repr, known))})")
    for i, name in enumerate(cfg.mining.detectors):
        DETECTORS.check(name, f"mining.detectors[{i}]")
    for name in cfg.review.weights:
        DETECTORS.check(name, f"review.weights.{name}")
    STRATEGIES.check(cfg.review.strategy, "review.strategy")
    try:
        embedding = configured_embedding(cfg)
        for key, name, served in (("mining.model", cfg.mining.model, False),
                                  ("retrain.model", cfg.retrain.model, True)):
            resolve_spec(name, cfg.dataset.modality, served=served, key=key, embedding=embedding)
    except EngineError as exc:
        raise ConfigError(str(exc)) from None
    return cfg
