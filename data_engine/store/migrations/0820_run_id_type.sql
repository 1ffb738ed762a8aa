-- One type per id across tables: a mining run's id is BIGINT in mining_runs, issues, review_queue
-- and propagation_runs (mining numbers its runs), but review_tasks and review_verdicts stored it as
-- VARCHAR, so every join between a queue and its tasks cast one side. Every value the engine wrote
-- there is the decimal text of a mining run id (or NULL); the strict CAST keeps each one (a value
-- that is not an integer fails the migration, naming it, rather than being dropped).
-- DuckDB refuses to change a column's type while an index depends on its table: the index on
-- review_tasks.task_id is dropped and recreated around the change.
DROP INDEX review_tasks_task;
ALTER TABLE review_tasks ALTER COLUMN run_id SET DATA TYPE BIGINT USING CAST(run_id AS BIGINT);
CREATE INDEX review_tasks_task ON review_tasks (task_id);
ALTER TABLE review_verdicts ALTER COLUMN run_id SET DATA TYPE BIGINT USING CAST(run_id AS BIGINT);
-- The view binds its column types when created: recreated, it reports run_id as BIGINT too.
CREATE OR REPLACE VIEW review_verdict_stats AS
SELECT run_id,
       issue_type,
       count(*) FILTER (WHERE outcome = 'confirmed') AS confirmed,
       count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
       count(*) AS reviewed
FROM (SELECT run_id, outcome, unnest(issue_types) AS issue_type FROM review_verdicts)
GROUP BY run_id, issue_type;
