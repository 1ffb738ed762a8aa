-- Drift of each landed training batch against the training data in force when it landed
-- (data_engine.ingest.batch_drift): the report `ingest --json` gives as `drift`, and the domain
-- classifier's out-of-fold score of each of its rows (the probability that the row is new), which
-- the `drift` detector turns into issues worth a label.
CREATE TABLE IF NOT EXISTS batch_drift (
    batch_id    VARCHAR PRIMARY KEY,   -- batches.batch_id
    drifted     BOOLEAN NOT NULL,
    columns     JSON NOT NULL,         -- the drifted columns' names
    auc         DOUBLE,                -- the domain classifier's out-of-fold AUC (NULL: too few rows)
    report      JSON NOT NULL,         -- the whole `drift` object, per column
    checked_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);
CREATE TABLE IF NOT EXISTS drift_rows (
    batch_id    VARCHAR NOT NULL,
    example_id  VARCHAR NOT NULL,
    score       DOUBLE NOT NULL,       -- out-of-fold probability that the row is a batch row (0..1)
    PRIMARY KEY (batch_id, example_id)
);
