-- label_events.event_id is assigned by its writers (data_engine.warehouse.last_event_id), set-wise,
-- not by a sequence: nextval() per row serialised a large ingest (~0.5 s per million events).
-- Without the default, a writer that forgets the id fails (NOT NULL) instead of reusing an id.
-- The ids already assigned stay; the next ones continue from the highest.
ALTER TABLE label_events ALTER COLUMN event_id DROP DEFAULT;
DROP SEQUENCE IF EXISTS label_event_seq;
