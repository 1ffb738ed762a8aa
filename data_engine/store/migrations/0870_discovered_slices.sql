-- Discovered weak slices (data_engine.mine.slices): per mining run, the groups of labeled examples
-- whose out-of-fold accuracy is significantly below the rest's. `conditions` (a JSON list of
-- {column, op, value}) is the readable rule on input columns that defines the slice on any frame
-- (gold, for the gate); `centroids` (the k-means centres of the run's embedding, JSON) and
-- `cluster` define it by nearest centre where there are no named columns. Neither: not gated.
CREATE TABLE IF NOT EXISTS discovered_slices (
    run_id         BIGINT NOT NULL,     -- mining_runs.run_id
    name           VARCHAR NOT NULL,
    definition     VARCHAR NOT NULL,    -- what a person reads: the rule, or the class mix and example ids
    n              BIGINT NOT NULL,     -- labeled examples in the slice
    accuracy       DOUBLE NOT NULL,     -- their out-of-fold accuracy (the task's per-example figure)
    rest_accuracy  DOUBLE NOT NULL,
    p_value        DOUBLE NOT NULL,     -- one-sided Fisher exact test, Benjamini-Hochberg adjusted
    source         VARCHAR NOT NULL,    -- 'cluster' (k-means of the embedding) or 'tree' (a tree on the errors)
    conditions     JSON,
    embedding      VARCHAR,             -- the stored embedding the centroids live in, if any
    centroids      JSON,
    cluster        INTEGER,
    PRIMARY KEY (run_id, name)
);
