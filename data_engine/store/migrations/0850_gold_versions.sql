-- Gold with holes and versions (data_engine.ship.gold). A gold set's version is the content hash of
-- its (example id, feature hash, label in force) rows; each version's rows are kept, so a change
-- (a relabel in place included) is said as counts. Each gate verdict records the gold version it was
-- decided on and the classes gold could not measure; gold_scores keeps every model's figures per gold
-- version, so the champion is re-scored when gold changes.
CREATE TABLE IF NOT EXISTS gold_versions (
    gold_version  VARCHAR PRIMARY KEY,
    n_gold        BIGINT NOT NULL,
    first_seen    TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen     TIMESTAMPTZ NOT NULL DEFAULT now()   -- the newest time the gold in force had this version
);
CREATE TABLE IF NOT EXISTS gold_version_labels (
    gold_version     VARCHAR NOT NULL,
    example_id       VARCHAR NOT NULL,
    feature_hash     UBIGINT NOT NULL,  -- examples.feature_hash: the input columns' hash
    label            VARCHAR NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS gold_score_seq START 1;
CREATE TABLE IF NOT EXISTS gold_scores (
    score_id       BIGINT PRIMARY KEY DEFAULT nextval('gold_score_seq'),
    model_version  INTEGER NOT NULL,
    gold_version   VARCHAR NOT NULL,
    n_gold         BIGINT NOT NULL,
    accuracy       DOUBLE,
    macro_f1       DOUBLE,
    unmeasured     VARCHAR[],         -- classes with fewer than [gate] min_class_gold gold examples
    scored_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
ALTER TABLE gate_verdicts ADD COLUMN gold_version VARCHAR;   -- NULL for verdicts before this migration
ALTER TABLE gate_verdicts ADD COLUMN unmeasured VARCHAR[];
