"""Ingest: pull the feed into DuckDB in bulk, verify certificates, read the centre's spreadsheets."""
