-- The loop: trained models, their deployments, and what the champion flagged in new data.
CREATE SEQUENCE IF NOT EXISTS model_version_seq START 1;
CREATE SEQUENCE IF NOT EXISTS deployment_seq START 1;

-- One row per trained model. Artifacts are skops files under HOME/models, checked against sha256
-- before every load. `status`: candidate (trained, not promoted), champion (the one served; at most
-- one), retired (a former champion), refused (the gate said no; `reason` says why).
CREATE TABLE models (
    version         INTEGER PRIMARY KEY,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    label_snapshot  BIGINT NOT NULL,
    train_size      BIGINT NOT NULL,
    model_spec      VARCHAR NOT NULL,
    params          JSON,
    classes         JSON NOT NULL,
    input_schema    JSON NOT NULL,
    metrics         JSON,
    artifact_path   VARCHAR NOT NULL,
    sha256          VARCHAR NOT NULL,
    status          VARCHAR NOT NULL CHECK (status IN ('candidate', 'champion', 'retired', 'refused')),
    reason          VARCHAR,
    evaluated_at    TIMESTAMPTZ
);

-- Every change of champion, in order: a promotion pushes a version, a rollback returns to the one
-- before it. The champion history is replayed from this table, never edited.
CREATE TABLE deployments (
    deployment_id     BIGINT PRIMARY KEY DEFAULT nextval('deployment_seq'),
    action            VARCHAR NOT NULL CHECK (action IN ('promote', 'rollback')),
    model_version     INTEGER NOT NULL,
    previous_version  INTEGER,
    reason            VARCHAR,
    actor             VARCHAR NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Unlabeled examples the champion scored: where it is unsure (small top-2 margin) or disagrees with
-- the newest candidate. Input of the `uncertain` detector. `score` is in [0, 1], low = look at it.
CREATE TABLE champion_flags (
    example_id         VARCHAR NOT NULL,
    example_version    INTEGER NOT NULL,
    champion_version   INTEGER NOT NULL,
    candidate_version  INTEGER,
    champion_label     VARCHAR NOT NULL,
    candidate_label    VARCHAR,
    margin             DOUBLE NOT NULL,
    is_unsure          BOOLEAN NOT NULL,
    is_disagreement    BOOLEAN NOT NULL,
    is_flagged         BOOLEAN NOT NULL,
    score              DOUBLE NOT NULL,
    reason             VARCHAR,
    scored_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (example_id, example_version, champion_version)
);
