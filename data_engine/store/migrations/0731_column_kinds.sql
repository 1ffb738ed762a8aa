-- dataset_columns.column_type no longer has a CHECK listing the kinds: new kinds ('vector' for
-- user-supplied embeddings, others by other plug-ins) come with the code, which validates them
-- (data_engine.store.config ColumnType). DuckDB cannot drop a CHECK, so the table is rebuilt.
CREATE TABLE dataset_columns_new (
    column_name  VARCHAR PRIMARY KEY,
    role         VARCHAR NOT NULL CHECK (role IN ('feature', 'text', 'label')),
    column_type  VARCHAR NOT NULL,
    position     INTEGER NOT NULL
);
INSERT INTO dataset_columns_new SELECT column_name, role, column_type, position FROM dataset_columns;
DROP TABLE dataset_columns;
ALTER TABLE dataset_columns_new RENAME TO dataset_columns;
