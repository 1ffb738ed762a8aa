-- The weights of an ensemble's members, fitted on out-of-fold predictions (data_engine.oof.mixture_weights),
-- kept with the predictions they were fitted on so a run that re-uses them mixes the same way.
CREATE TABLE IF NOT EXISTS ensemble_weights (
    model_spec      VARCHAR NOT NULL,
    label_snapshot  BIGINT NOT NULL,
    weights         JSON NOT NULL,
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (model_spec, label_snapshot)
);
