"""Metadata persistence: tables, repositories and migrations. The only place with metadata SQL."""
