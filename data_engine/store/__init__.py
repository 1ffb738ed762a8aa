"""Where examples are stored: the engine's home, its config, the DuckDB warehouse and its migrations,
the dataset's schema, and reading features and the labels in force back out."""
