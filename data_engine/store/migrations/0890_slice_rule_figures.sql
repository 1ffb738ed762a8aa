-- A discovered slice's rule against the cluster it states (data_engine.mine.slices): rule_precision
-- is the share of the rule's rows in the cluster, rule_coverage the share of the cluster the rule
-- selects (1 and 1 for an error-tree node, whose rule is the slice; NULL without a rule, and for
-- slices stored before this migration). A cluster whose best rule falls below the minimums
-- (slice_rules.MIN_RULE_PRECISION, MIN_RULE_COVERAGE) is stored without `conditions`.
ALTER TABLE discovered_slices ADD COLUMN IF NOT EXISTS rule_precision DOUBLE;
ALTER TABLE discovered_slices ADD COLUMN IF NOT EXISTS rule_coverage DOUBLE;
