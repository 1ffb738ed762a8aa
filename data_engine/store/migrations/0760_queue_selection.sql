-- How each queued example was chosen: 'fix' (a flagged label issue), the selection strategy's name
-- (a new example to label), or 'explore' (the random share that keeps the strategy's gain over
-- random measurable). NULL for queues mined before this column existed.
ALTER TABLE review_queue ADD COLUMN selection VARCHAR;
