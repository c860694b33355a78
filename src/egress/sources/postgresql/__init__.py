"""PostgreSQL: catalog and COPY fast path over psycopg, Arrow batches over ADBC.

One module per concern: ``settings`` (the connection's settings, the session, encodings),
``connect`` (failure classes, warnings), ``columns`` (types and the SQL that reads each
column), ``batches`` (ADBC's batches made Egress's), ``catalog`` and ``snapshot`` (their
queries), and ``source`` (the connection's life: connect, read, copy, cancel)."""

from egress.sources.postgresql.columns import csv_header, logical_type
from egress.sources.postgresql.connect import (
    NOT_POSTGRES,
    SUPERUSER_WARNING,
    WRITER_WARNING,
    connect_error_class,
)
from egress.sources.postgresql.settings import SOURCE_ENCODINGS, PostgresSettings
from egress.sources.postgresql.source import PostgresSource

__all__ = [
    "NOT_POSTGRES",
    "SOURCE_ENCODINGS",
    "SUPERUSER_WARNING",
    "WRITER_WARNING",
    "PostgresSettings",
    "PostgresSource",
    "connect_error_class",
    "csv_header",
    "logical_type",
]
