-- Gold examples live in their own id space (issue 11): ingest stores a gold row's id as
-- 'gold:' || id, so a gold file whose ids equal training ids never replaces a training example.
-- Gold rows stored before get the same prefix; ingest rows of the old ledger (before 0600) that
-- recorded a gold batch follow them. Training versions that once shared an id with gold rows keep it.
UPDATE examples SET example_id = 'gold:' || example_id
WHERE is_gold AND NOT starts_with(example_id, 'gold:');

UPDATE label_ledger SET example_id = 'gold:' || example_id
WHERE source = 'ingest' AND NOT starts_with(example_id, 'gold:')
  AND coalesce(json_extract(detail, '$.gold')::VARCHAR = 'true', false);
