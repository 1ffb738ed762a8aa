-- Learning from reviewers' verdicts: propagation runs (the look-alike detector's and copies'
-- verdicts written as 'propagated' ledger events), and person-written rules ('rule' events).

-- One row per propagation. `undone_at` set by `review undo-propagation`: from then on the run's
-- events no longer count in `current_labels` (the ledger itself stays append-only).
CREATE TABLE propagation_runs (
    propagation_id       BIGINT PRIMARY KEY,
    mining_run_id        BIGINT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor                VARCHAR NOT NULL,      -- the detector and its version
    policy               VARCHAR NOT NULL,      -- 'apply' (only applied runs are stored)
    threshold            DOUBLE,                -- p(discard) a look-alike had to clear
    precision_target     DOUBLE,
    estimated_precision  DOUBLE,                -- on held-out verdicts, when the threshold was chosen
    n_verdicts           BIGINT NOT NULL,       -- verdicts the detector learned from
    n_lookalikes         BIGINT NOT NULL,       -- examples discarded as look-alikes
    n_copies             BIGINT NOT NULL,       -- exact copies given a reviewed partner's verdict
    n_audit              BIGINT NOT NULL,       -- propagated examples sent back to review
    undone_at            TIMESTAMPTZ,
    undone_by            VARCHAR
);

-- Every example a propagation touched, with the ledger event written for it.
CREATE TABLE propagated_examples (
    propagation_id   BIGINT NOT NULL,
    example_id       VARCHAR NOT NULL,
    example_version  INTEGER NOT NULL,
    event_id         BIGINT NOT NULL,
    kind             VARCHAR NOT NULL CHECK (kind IN ('lookalike', 'copy')),
    label            VARCHAR,          -- NULL: discarded
    score            DOUBLE,
    partner_id       VARCHAR,          -- for copies: the reviewed example whose verdict it took
    audit            BOOLEAN NOT NULL, -- sent back to the review queue to measure precision
    PRIMARY KEY (propagation_id, example_id)
);

-- The label in force, as in 0001, with two more sources:
--   'rule'       a person's bulk action (data-engine discard/relabel --where): ranks with review,
--                the later of the two wins;
--   'propagated' a verdict carried from reviewed examples: beats ingest, never a person's
--                verdict (review, consensus, rule), whatever the order; events of an undone
--                propagation run do not count.
CREATE OR REPLACE VIEW current_labels AS
WITH ranked AS (
    SELECT le.*,
           CASE le.source WHEN 'consensus' THEN 4 WHEN 'review' THEN 3 WHEN 'rule' THEN 3
                          WHEN 'propagated' THEN 2 WHEN 'ingest' THEN 1 ELSE 0 END AS source_rank
    FROM label_events le
    JOIN current_examples ce
      ON ce.example_id = le.example_id
     AND (le.example_version IS NULL OR le.example_version = ce.version)
    WHERE le.source <> 'propagated' OR NOT EXISTS (
        SELECT 1 FROM propagated_examples pe JOIN propagation_runs pr USING (propagation_id)
        WHERE pe.event_id = le.event_id AND pr.undone_at IS NOT NULL)
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

-- What a person's bulk rule (data-engine discard/relabel --where SQL) selects from: the current
-- examples with the label in force, whether it is discarded, its source and whether a person
-- reviewed it.
CREATE VIEW rule_scope AS
SELECT ce.*,
       cl.label AS label_in_force,
       coalesce(cl.is_discarded, false) AS is_discarded,
       cl.source AS label_source,
       coalesce(cl.source IN ('review', 'consensus'), false) AS is_reviewed
FROM current_examples ce LEFT JOIN current_labels cl USING (example_id);
