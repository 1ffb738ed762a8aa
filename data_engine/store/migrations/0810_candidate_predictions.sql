-- Each served-model candidate's own out-of-fold probabilities (data_engine.mine.candidates), per
-- example version, label snapshot and member spec (the member's model spec key and folds). Training
-- and mining at the same label snapshot re-use each other's fits instead of fitting again; rows of
-- older snapshots are dropped when new ones are written.
CREATE TABLE IF NOT EXISTS candidate_predictions (
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    member_spec      VARCHAR NOT NULL,
    label_snapshot   BIGINT NOT NULL,
    probs            DOUBLE[] NOT NULL,
    computed_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
