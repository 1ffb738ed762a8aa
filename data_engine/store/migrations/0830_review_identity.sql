-- Label Studio's identity. A server restarted on a new database (a lost volume, a move to
-- PostgreSQL on the same URL) hands out project, task and annotation ids again from 1, and a
-- project deleted and re-created gets a new id: ids alone do not say which server, project or
-- answer they name. From here on:
--
-- * every project the engine used is a row of `review_projects` with the engine's own key
--   (`project_key`, never reused), the server's id of it, the project's `created_at` as the server
--   sent it and the server's identity (its organisation's id and creation time, new with every
--   new database). A project found deleted, or with another `created_at` under the same id, is
--   retired (`retired_at`, `retired_reason`) and a new row takes over: ids of different rows
--   never meet.
-- * `review_tasks.project_id`, `review_annotations.project_id`, `review_verdicts.project_id` and
--   `review_cursor.project_id` hold that key (for the rows before this migration it equals the
--   server's project id, so they are kept as they are).
-- * annotations and verdicts are keyed by (project key, id), and an annotation keeps its
--   `created_at`: an answer is matched by project, annotation id AND creation time.
-- * `review_changes` says what was noticed and reconciled: a changed server, a deleted project
--   or task, a deleted (retracted) annotation.

CREATE TABLE review_projects_v2 (
    project_key         BIGINT PRIMARY KEY,   -- the engine's id of this project (review_tasks.project_id)
    url                 VARCHAR NOT NULL,
    title               VARCHAR NOT NULL,
    project_id          BIGINT NOT NULL,      -- the server's id of it
    dataset             VARCHAR NOT NULL,
    created_at          TIMESTAMPTZ NOT NULL DEFAULT now(),  -- when the engine recorded it
    project_created_at  VARCHAR,              -- the project's created_at, as the server sent it
    server_id           VARCHAR,              -- the server's identity when the project was recorded
    retired_at          TIMESTAMPTZ,          -- set when the project was found gone or replaced
    retired_reason      VARCHAR
);
-- The key of an existing project is its server id. Two servers (two URLs) may both have had a
-- project 1: the newest record keeps key 1 (the engine's rows under 1 are its), an older one gets
-- a key above every id and is retired.
INSERT INTO review_projects_v2 (project_key, url, title, project_id, dataset, created_at, retired_at, retired_reason)
SELECT CASE WHEN rn = 1 THEN project_id ELSE top + row_number() OVER (PARTITION BY rn = 1 ORDER BY rn, url, title) END,
       url, title, project_id, dataset, created_at,
       CASE WHEN rn = 1 THEN NULL ELSE now() END, CASE WHEN rn = 1 THEN NULL ELSE 'same id on another server' END
FROM (SELECT *, row_number() OVER (PARTITION BY project_id ORDER BY created_at DESC, url, title) AS rn,
             max(project_id) OVER () AS top
      FROM review_projects);
DROP TABLE review_projects;
ALTER TABLE review_projects_v2 RENAME TO review_projects;

CREATE TABLE review_annotations_v2 (
    project_id       BIGINT NOT NULL,   -- review_projects.project_key
    annotation_id    BIGINT NOT NULL,
    task_id          BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    annotator_id     BIGINT,
    annotator        VARCHAR NOT NULL,
    choice           VARCHAR,
    label            VARCHAR,
    is_discard       BOOLEAN NOT NULL,
    lead_time        DOUBLE,
    created_at       VARCHAR,           -- the server's creation time of the annotation, as it sent it
    updated_at       VARCHAR NOT NULL,
    source           VARCHAR NOT NULL CHECK (source IN ('review', 'vote')),
    first_event_id   BIGINT NOT NULL,   -- the ledger event of its first pulled version
    event_id         BIGINT NOT NULL,   -- ... and of its latest (a retraction retracts all between)
    pulled_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, annotation_id)
);
INSERT INTO review_annotations_v2 (project_id, annotation_id, task_id, example_id, example_version, annotator_id,
                                   annotator, choice, label, is_discard, lead_time, created_at, updated_at, source,
                                   first_event_id, event_id, pulled_at)
SELECT a.project_id, a.annotation_id, a.task_id, a.example_id, a.example_version, a.annotator_id, a.annotator,
       a.choice, a.label, a.is_discard, a.lead_time, NULL, a.updated_at, a.source,
       coalesce((SELECT min(l.event_id) FROM label_ledger l
                 WHERE l.source IN ('review', 'vote') AND l.example_id = a.example_id AND l.event_id <= a.event_id
                   AND json_extract_string(l.detail, '$.annotation_id') = CAST(a.annotation_id AS VARCHAR)),
                a.event_id),
       a.event_id, a.pulled_at
FROM review_annotations a;
DROP TABLE review_annotations;
ALTER TABLE review_annotations_v2 RENAME TO review_annotations;

DROP VIEW review_verdict_stats;
CREATE TABLE review_verdicts_v2 (
    project_id       BIGINT NOT NULL,   -- review_projects.project_key (0: a simulated reviewer)
    task_id          BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    run_id           BIGINT,            -- a mining run's id (migration 0820)
    issue_types      VARCHAR[],
    given_label      VARCHAR,
    label            VARCHAR,
    is_discard       BOOLEAN NOT NULL,
    outcome          VARCHAR NOT NULL CHECK (outcome IN ('confirmed', 'rejected')),
    source           VARCHAR NOT NULL CHECK (source IN ('review', 'consensus')),
    n_votes          INTEGER NOT NULL,
    agreement        DOUBLE,
    event_id         BIGINT NOT NULL,
    decided_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, task_id)
);
INSERT INTO review_verdicts_v2 SELECT project_id, task_id, example_id, example_version, run_id, issue_types,
    given_label, label, is_discard, outcome, source, n_votes, agreement, event_id, decided_at FROM review_verdicts;
DROP TABLE review_verdicts;
ALTER TABLE review_verdicts_v2 RENAME TO review_verdicts;
CREATE VIEW review_verdict_stats AS
SELECT run_id,
       issue_type,
       count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
       count(*) AS reviewed
FROM (SELECT run_id, outcome, unnest(issue_types) AS issue_type FROM review_verdicts)
GROUP BY run_id, issue_type;

-- What was noticed about Label Studio's identity and how it was reconciled, one row each.
-- kind: 'server_changed' | 'project_deleted' | 'task_deleted' | 'annotation_deleted'.
CREATE TABLE review_changes (
    project_key    BIGINT NOT NULL,     -- the project it concerns (the retired one for a project change)
    kind           VARCHAR NOT NULL CHECK (kind IN ('server_changed', 'project_deleted', 'task_deleted',
                                                    'annotation_deleted')),
    task_id        BIGINT,
    annotation_id  BIGINT,
    example_id     VARCHAR,
    detail         VARCHAR,             -- what was done about it, in words
    noticed_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The label in force, as in 0740, without the events a later 'retraction' entry of the ledger
-- withdrew (an annotation deleted in Label Studio after it was pulled): the ledger stays
-- append-only, and the example's previous label is in force again.
CREATE OR REPLACE VIEW current_labels AS
WITH ranked AS (
    SELECT le.*,
           CASE le.source WHEN 'consensus' THEN 4 WHEN 'review' THEN 3 WHEN 'rule' THEN 3
                          WHEN 'propagated' THEN 2 WHEN 'ingest' THEN 1 ELSE 0 END AS source_rank
    FROM label_events le
    JOIN current_examples ce
      ON ce.example_id = le.example_id
     AND (le.example_version IS NULL OR le.example_version = ce.version)
    WHERE (le.source <> 'propagated' OR NOT EXISTS (
        SELECT 1 FROM propagated_examples pe JOIN propagation_runs pr USING (propagation_id)
        WHERE pe.event_id = le.event_id AND pr.undone_at IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM label_ledger r WHERE r.source = 'retraction'
                      AND CAST(json_extract_string(r.detail, '$.retracts') AS BIGINT) = le.event_id)
)
SELECT example_id,
       label,
       label IS NULL AS is_discarded,
       source,
       actor,
       event_id,
       created_at
FROM ranked
WHERE source_rank > 0
QUALIFY row_number() OVER (PARTITION BY example_id ORDER BY source_rank DESC, event_id DESC) = 1;
