"""Database: engines per dialect, table definitions and migrations."""
