-- The promotion gate's verdicts as typed columns: one row per gate run on a candidate. Before this
-- table, the verdict was a prefix ('gate passed: ') on models.reason that the deploy step parsed back.
-- The deploy step reads the newest row of a model: passed, and against which champion it was compared.
CREATE SEQUENCE IF NOT EXISTS gate_verdict_seq START 1;
CREATE TABLE gate_verdicts (
    verdict_id        BIGINT PRIMARY KEY DEFAULT nextval('gate_verdict_seq'),
    model_version     INTEGER NOT NULL,
    champion_version  INTEGER,           -- the champion it was compared with; NULL when there was none
    passed            BOOLEAN NOT NULL,
    metric            VARCHAR NOT NULL,  -- [gate] metric: accuracy or macro_f1
    test              VARCHAR NOT NULL,  -- [gate] test: paired or strict
    alpha             DOUBLE,
    outcome           VARCHAR,           -- better, worse, tied (paired test); NULL without a comparison
    n_gold            BIGINT,
    difference        DOUBLE,            -- candidate minus champion on the metric, paired on gold examples
    ci_low            DOUBLE,
    ci_high           DOUBLE,
    p_worse           DOUBLE,
    p_better          DOUBLE,
    reason            VARCHAR NOT NULL,
    decided_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Existing homes: each evaluated model's gate record (kept in models.metrics by the gate) becomes its
-- row, and the prefix leaves models.reason.
INSERT INTO gate_verdicts (model_version, champion_version, passed, metric, test, alpha, outcome, n_gold,
                           difference, ci_low, ci_high, p_worse, p_better, reason, decided_at)
SELECT version,
       CAST(json_extract_string(metrics, '$.gate.champion_version') AS INTEGER),
       CAST(json_extract_string(metrics, '$.gate.promote') AS BOOLEAN),
       coalesce(json_extract_string(metrics, '$.gate.metric'), 'accuracy'),
       coalesce(json_extract_string(metrics, '$.gate.test'), 'strict'),
       CAST(json_extract_string(metrics, '$.gate.alpha') AS DOUBLE),
       json_extract_string(metrics, '$.gate.outcome'),
       CAST(json_extract_string(metrics, '$.gate.n_gold') AS BIGINT),
       CAST(json_extract_string(metrics, '$.gate.difference') AS DOUBLE),
       CAST(json_extract_string(metrics, '$.gate.ci_low') AS DOUBLE),
       CAST(json_extract_string(metrics, '$.gate.ci_high') AS DOUBLE),
       CAST(json_extract_string(metrics, '$.gate.p_worse') AS DOUBLE),
       CAST(json_extract_string(metrics, '$.gate.p_better') AS DOUBLE),
       coalesce(json_extract_string(metrics, '$.gate.reason'), ''),
       coalesce(evaluated_at, created_at)
FROM models
WHERE json_extract_string(metrics, '$.gate.promote') IS NOT NULL
ORDER BY version;

UPDATE models SET reason = substr(reason, length('gate passed: ') + 1) WHERE starts_with(reason, 'gate passed: ');
