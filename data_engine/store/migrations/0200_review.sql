-- Human review in Label Studio: projects, tasks sent, annotations pulled, verdicts, the pull cursor.

-- One Label Studio project per dataset and server; found again by (url, title).
CREATE TABLE review_projects (
    url         VARCHAR NOT NULL,
    title       VARCHAR NOT NULL,
    project_id  BIGINT NOT NULL,
    dataset     VARCHAR NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (url, title)
);

-- One row per example version sent for review. A push first records its rows as 'sending'
-- (task_id NULL), then imports them, then records the task ids as 'open'; a crash in between
-- leaves 'sending' rows that the next push reconciles with what the server already has (by the
-- engine_key stored in each task's data) before importing the rest.
-- status: sending -> open -> partial (some votes of a multi-annotator task) -> done | tie.
CREATE TABLE review_tasks (
    project_id       BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    engine_key       VARCHAR NOT NULL,
    run_id           VARCHAR,
    task_id          BIGINT,
    status           VARCHAR NOT NULL CHECK (status IN ('sending', 'open', 'partial', 'tie', 'done')),
    issue_types      VARCHAR[],
    given_label      VARCHAR,
    suggested_label  VARCHAR,
    suggested_score  DOUBLE,
    priority         DOUBLE,
    sent_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at     TIMESTAMPTZ,
    PRIMARY KEY (project_id, example_id, example_version)
);
CREATE INDEX review_tasks_task ON review_tasks (task_id);

-- Every annotation pulled, as last seen. An annotation edited in Label Studio comes back with a
-- later updated_at: its row is replaced and a new label event supersedes the earlier one.
CREATE TABLE review_annotations (
    annotation_id    BIGINT PRIMARY KEY,
    project_id       BIGINT NOT NULL,
    task_id          BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    annotator_id     BIGINT,
    annotator        VARCHAR NOT NULL,
    choice           VARCHAR,
    label            VARCHAR,          -- NULL with is_discard: "not a valid example"
    is_discard       BOOLEAN NOT NULL,
    lead_time        DOUBLE,
    updated_at       VARCHAR NOT NULL,  -- the server's time, as it sent it
    source           VARCHAR NOT NULL CHECK (source IN ('review', 'vote')),
    event_id         BIGINT NOT NULL,   -- the label_events row written for this version of it
    pulled_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The verdict in force per task: one reviewer's answer, or the consensus of several.
-- outcome: 'confirmed' when the reviewer changed the label or discarded the example (the miner
-- was right to flag it), 'rejected' when the given label was kept.
CREATE TABLE review_verdicts (
    task_id          BIGINT PRIMARY KEY,
    project_id       BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    run_id           VARCHAR,
    issue_types      VARCHAR[],
    given_label      VARCHAR,
    label            VARCHAR,
    is_discard       BOOLEAN NOT NULL,
    outcome          VARCHAR NOT NULL CHECK (outcome IN ('confirmed', 'rejected')),
    source           VARCHAR NOT NULL CHECK (source IN ('review', 'consensus')),
    n_votes          INTEGER NOT NULL,
    agreement        DOUBLE,           -- share of votes for the verdict (1.0 for one reviewer)
    event_id         BIGINT NOT NULL,
    decided_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per-annotator quality from multi-annotator tasks (cleanlab.multiannotator), refreshed each pull.
CREATE TABLE review_annotator_quality (
    annotator        VARCHAR PRIMARY KEY,
    n_votes          INTEGER NOT NULL,
    agreement        DOUBLE,           -- share of votes equal to the consensus
    quality          DOUBLE,           -- cleanlab's annotator quality score, when it could be computed
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Where the last pull stopped: the newest task updated_at (server time) it has seen.
CREATE TABLE review_cursor (
    project_id     BIGINT PRIMARY KEY,
    updated_after  VARCHAR,
    pulled_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    pulls          BIGINT NOT NULL DEFAULT 0
);

-- What reviewers said about each mining run's findings, per issue type.
CREATE VIEW review_verdict_stats AS
SELECT run_id,
       issue_type,
       count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
       count(*) AS reviewed
FROM (SELECT run_id, outcome, unnest(issue_types) AS issue_type FROM review_verdicts)
GROUP BY run_id, issue_type;
