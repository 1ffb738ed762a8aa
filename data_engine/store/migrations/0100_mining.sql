-- Issue mining: model predictions, mining runs, their per-example findings, the review queue.
CREATE SEQUENCE IF NOT EXISTS mining_run_seq START 1;

-- Class probabilities per example version. `probs` follows the order of `dataset_classes`.
-- kind: 'oof'      out-of-fold, for labeled training examples (fold = the fold held out in);
--       'full'     a model fitted on all training examples, scoring unlabeled ones for mining;
--       'champion' the deployed model scoring unlabeled examples (written by data_engine.scoring).
-- `label_snapshot` (highest label event id) and `model_spec` say what a row was computed from:
-- mining re-uses rows only while both still match.
CREATE TABLE IF NOT EXISTS predictions (
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    model_spec       VARCHAR NOT NULL,
    label_snapshot   BIGINT NOT NULL,
    fold             INTEGER,
    probs            DOUBLE[] NOT NULL,
    predicted_label  VARCHAR,
    predicted_score  DOUBLE,
    computed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind             VARCHAR NOT NULL CHECK (kind IN ('oof', 'full', 'champion'))
);

-- One row per mining run. counts: flagged examples per issue type; timings: seconds per stage;
-- summary: dataset-level findings (class imbalance, rare classes, detector summaries).
CREATE TABLE IF NOT EXISTS mining_runs (
    run_id              BIGINT PRIMARY KEY,
    started_at          TIMESTAMPTZ NOT NULL,
    finished_at         TIMESTAMPTZ,
    label_snapshot      BIGINT NOT NULL,
    model_spec          VARCHAR NOT NULL,
    counts              JSON,
    timings             JSON,
    noise_rate          DOUBLE,
    reused_predictions  BOOLEAN,
    n_labeled           BIGINT,
    n_unlabeled         BIGINT,
    summary             JSON
);

-- Per-example findings of a run. Stored: every `label` row (its score is the label-quality score
-- retraining may weight by) and the flagged rows of the other detectors.
-- score in [0, 1]: low means likely a problem.
CREATE TABLE IF NOT EXISTS issues (
    run_id           BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER,
    issue_type       VARCHAR NOT NULL,
    score            DOUBLE NOT NULL,
    is_issue         BOOLEAN NOT NULL,
    reason           VARCHAR,
    detail           JSON
);

-- The ranked review queue of a run: each example once, with all its issue types.
CREATE TABLE IF NOT EXISTS review_queue (
    run_id           BIGINT NOT NULL,
    rank             INTEGER NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    issue_types      VARCHAR[] NOT NULL,
    priority         DOUBLE NOT NULL,
    suggested_label  VARCHAR,
    suggested_score  DOUBLE,
    given_label      VARCHAR,
    scores           JSON,
    PRIMARY KEY (run_id, rank)
);
