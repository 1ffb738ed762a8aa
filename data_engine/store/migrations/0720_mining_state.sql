-- The state a mining run acted on: the label snapshot (already stored) and the number of stored
-- example versions (`examples` keeps every version, so the count grows with each new or changed
-- row). The mining sensor compares the warehouse's state with the last run's and never mines the
-- same state twice. NULL for runs stored before this migration.
ALTER TABLE mining_runs ADD COLUMN example_versions BIGINT;
