-- The foundation: batches, examples, the label ledger, quarantine.
CREATE SEQUENCE IF NOT EXISTS label_event_seq START 1;

CREATE TABLE batches (
    batch_id          VARCHAR PRIMARY KEY,
    path              VARCHAR NOT NULL,
    sha256            VARCHAR NOT NULL,
    format            VARCHAR,
    is_gold           BOOLEAN NOT NULL DEFAULT false,
    received_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    rows_in           BIGINT NOT NULL DEFAULT 0,
    rows_ok           BIGINT NOT NULL DEFAULT 0,
    rows_quarantined  BIGINT NOT NULL DEFAULT 0,
    rows_new          BIGINT NOT NULL DEFAULT 0,
    rows_changed      BIGINT NOT NULL DEFAULT 0,
    rows_unchanged    BIGINT NOT NULL DEFAULT 0,
    rows_labeled      BIGINT NOT NULL DEFAULT 0,
    status            VARCHAR NOT NULL CHECK (status IN ('ingested', 'duplicate', 'rejected')),
    reason            VARCHAR
);

-- Dataset columns are added to `examples` by ingestion once their types are known
-- (from the config's column_types or the first batch); `dataset_columns` records them.
CREATE TABLE dataset_columns (
    column_name  VARCHAR PRIMARY KEY,
    role         VARCHAR NOT NULL CHECK (role IN ('feature', 'text', 'label')),
    column_type  VARCHAR NOT NULL CHECK (column_type IN ('numeric', 'categorical', 'text', 'label')),
    position     INTEGER NOT NULL
);

CREATE TABLE dataset_classes (
    class_label  VARCHAR PRIMARY KEY,
    position     INTEGER NOT NULL,
    source       VARCHAR NOT NULL
);

CREATE TABLE examples (
    example_id    VARCHAR NOT NULL,
    version       INTEGER NOT NULL,
    batch_id      VARCHAR NOT NULL,
    row_number    BIGINT NOT NULL,
    ingested_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    content_hash  VARCHAR NOT NULL,
    feature_hash  VARCHAR NOT NULL,
    is_gold       BOOLEAN NOT NULL DEFAULT false
    -- (example_id, version) is unique: ingestion is its only writer, one process at a time, and
    -- assigns versions set-wise. No PRIMARY KEY: its index costs more than the rest of a load.
);

CREATE TABLE label_events (
    -- Unique and monotonic by its sequence; no PRIMARY KEY index (it doubled the cost of a load).
    event_id         BIGINT NOT NULL DEFAULT nextval('label_event_seq'),
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER,
    label            VARCHAR,
    source           VARCHAR NOT NULL,
    actor            VARCHAR NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    detail           JSON
);

CREATE TABLE quarantine (
    batch_id    VARCHAR NOT NULL,
    row_number  BIGINT NOT NULL,
    raw         VARCHAR,
    reason      VARCHAR NOT NULL
);

-- The newest stored version of every example.
CREATE VIEW current_examples AS
SELECT e.* FROM examples e
JOIN (SELECT example_id, max(version) AS version FROM examples GROUP BY example_id) m
  USING (example_id, version);

-- The label in force per example. Precedence (documented in the README):
--   1. only events recorded for the example's current content version count;
--   2. consensus beats review, review beats ingest ('vote' events are individual votes of a
--      multi-annotator task and are never in force by themselves);
--   3. within the same source rank, the later event (higher event_id) wins;
--   4. a NULL label is a discard: is_discarded is true and label is NULL.
CREATE VIEW current_labels AS
WITH ranked AS (
    SELECT le.*,
           CASE le.source WHEN 'consensus' THEN 3 WHEN 'review' THEN 2 WHEN 'ingest' THEN 1 ELSE 0 END AS source_rank
    FROM label_events le
    JOIN current_examples ce
      ON ce.example_id = le.example_id
     AND (le.example_version IS NULL OR le.example_version = ce.version)
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
