-- content_hash and feature_hash as the 64-bit integers DuckDB's hash() returns, not 16 hex digits:
-- formatting and storing two incompressible 16-character strings per row was about a fifth of a
-- large load. Existing hashes keep their values (the text was the same integer in hex).
ALTER TABLE examples ALTER COLUMN content_hash SET DATA TYPE UBIGINT USING ('0x' || content_hash)::UBIGINT;
ALTER TABLE examples ALTER COLUMN feature_hash SET DATA TYPE UBIGINT USING ('0x' || feature_hash)::UBIGINT;
