-- Classes as a managed set (data-engine classes add|rename): every change to dataset_classes after
-- the first batch fixed it is a row here; labels in force are renamed by ledger events (the old
-- events are never rewritten), and quarantined rows whose label became a class are re-admitted.
CREATE TABLE class_changes (
    change_id        BIGINT PRIMARY KEY,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind             VARCHAR NOT NULL CHECK (kind IN ('add', 'rename')),
    class_label      VARCHAR NOT NULL,   -- the class added, or the new name
    old_label        VARCHAR,            -- rename: the old name
    actor            VARCHAR NOT NULL,
    labels_renamed   BIGINT NOT NULL DEFAULT 0,   -- ledger events written for labels in force
    rows_readmitted  BIGINT NOT NULL DEFAULT 0    -- quarantined rows stored as examples
);

-- The batch a quarantined row was re-admitted in (it then counts there); NULL while it waits.
ALTER TABLE quarantine ADD COLUMN readmitted_in VARCHAR;
