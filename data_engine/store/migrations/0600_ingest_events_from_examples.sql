-- Ingest label events are derived from `examples`, not written as rows: an ingest event repeated
-- each example's id and label (DuckDB compressing the unique ids a second time was ~0.5 s of a
-- 2M-row load, the whole insert ~1.1 s).
-- `label_ledger` keeps the rows written by people and processes (review, vote, consensus) and, in
-- older warehouses, the ingest rows written before this migration (they stay there, append-only).
ALTER TABLE label_events RENAME TO label_ledger;

-- The id of a stored version's ingest event: set by ingest for labeled rows only. NULL for the
-- rows stored before this migration, whose ingest event is already a row of the ledger.
ALTER TABLE examples ADD COLUMN label_event_id BIGINT;

-- The ledger as readers knew it: the written rows plus one ingest event per labeled version.
-- The label lives in the dataset's own label column of `examples`, whose name is only known from
-- the config, so static SQL cannot name it. This placeholder derives no rows (label NULL, filtered
-- out); ingest replaces the view with one naming the column (data_engine.schema.define_label_events,
-- called in the batch's transaction before any example gets a label_event_id). Keep the two in step.
CREATE VIEW label_events AS
SELECT event_id, example_id, example_version, label, source, actor, created_at, detail FROM label_ledger
UNION ALL
SELECT label_event_id, example_id, version, label, 'ingest', 'batch:' || batch_id, ingested_at,
       json_object('batch_id', batch_id, 'gold', is_gold)
FROM (SELECT label_event_id, example_id, version, batch_id, ingested_at, is_gold, NULL::VARCHAR AS label
      FROM examples)
WHERE label_event_id IS NOT NULL AND label IS NOT NULL;
