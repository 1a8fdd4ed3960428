"""Publication of gated marts (published.duckdb) and the reminder exports for city centres."""
