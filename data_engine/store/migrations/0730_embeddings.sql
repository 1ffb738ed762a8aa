-- Embeddings computed once per content version (data_engine.mine.embedders.cache).
-- content_hash: the example's feature_hash (hash of its input columns: a label change does not
-- re-embed, and two examples with the same content share one vector); embedder: "name@version";
-- columns: the input columns embedded, as a JSON list. Mining again reads these rows instead of
-- embedding; a new batch embeds only the content not seen before.
CREATE TABLE IF NOT EXISTS embeddings (
    embedder      VARCHAR NOT NULL,
    columns       VARCHAR NOT NULL,
    content_hash  UBIGINT NOT NULL,
    vector        FLOAT[] NOT NULL,
    computed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (embedder, columns, content_hash)
);
