-- Second opinions: a single reviewer's label that the model still plainly contradicts goes to
-- review once more, as a new task of the same example version ([review] max_opinions). The
-- opinion number joins the key; existing tasks are each example version's first opinion.
DROP INDEX review_tasks_task;
CREATE TABLE review_tasks_v2 (
    project_id       BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    opinion          INTEGER NOT NULL DEFAULT 1 CHECK (opinion >= 1),
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
    PRIMARY KEY (project_id, example_id, example_version, opinion)
);
INSERT INTO review_tasks_v2 (project_id, example_id, example_version, opinion, engine_key, run_id, task_id, status,
                             issue_types, given_label, suggested_label, suggested_score, priority, sent_at,
                             completed_at)
SELECT project_id, example_id, example_version, 1, engine_key, run_id, task_id, status, issue_types, given_label,
       suggested_label, suggested_score, priority, sent_at, completed_at
FROM review_tasks;
DROP TABLE review_tasks;
ALTER TABLE review_tasks_v2 RENAME TO review_tasks;
CREATE INDEX review_tasks_task ON review_tasks (task_id);
