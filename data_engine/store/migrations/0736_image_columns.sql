-- An image column (dataset.image_column) is recorded with role 'image' (its column_type is
-- 'image'; 0731 left column_type unchecked). DuckDB cannot alter a CHECK constraint, so the table
-- is rebuilt with the wider role check, its rows kept.
CREATE TABLE dataset_columns_0736 (
    column_name  VARCHAR PRIMARY KEY,
    role         VARCHAR NOT NULL CHECK (role IN ('feature', 'text', 'label', 'image')),
    column_type  VARCHAR NOT NULL,
    position     INTEGER NOT NULL
);
INSERT INTO dataset_columns_0736 SELECT column_name, role, column_type, position FROM dataset_columns;
DROP TABLE dataset_columns;
ALTER TABLE dataset_columns_0736 RENAME TO dataset_columns;
