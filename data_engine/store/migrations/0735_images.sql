-- Image files (dataset.image_column): each distinct image the engine accepted, stored once under
-- HOME/images by the sha256 of its bytes (see data_engine.ingest.images). ``path`` is relative to
-- the home; ``phash`` is imagehash's 64-bit perceptual hash (near-duplicate search).
CREATE TABLE IF NOT EXISTS images (
    sha256 VARCHAR PRIMARY KEY,
    path VARCHAR NOT NULL,
    format VARCHAR NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    mode VARCHAR NOT NULL,
    bytes BIGINT NOT NULL,
    phash UBIGINT NOT NULL,
    added_at TIMESTAMPTZ DEFAULT now()
);
-- What each ingested row's image column said (the examples hold the stored copy's path).
CREATE TABLE IF NOT EXISTS image_sources (
    batch_id VARCHAR NOT NULL,
    row_number BIGINT NOT NULL,
    source VARCHAR NOT NULL,
    sha256 VARCHAR NOT NULL,
    PRIMARY KEY (batch_id, row_number)
);
