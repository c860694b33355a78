"""MySQL and MariaDB over PyMySQL with an unbuffered (server-side) cursor: rows stream in
batches, never a whole result in memory.

``settings`` (the connection's settings and their admission), ``connect`` (failure classes,
warnings, statement limits), ``columns`` (types and value fixes), ``catalog`` (its queries)
and ``source`` (the connection's life: connect, catalog, probe, read, cancel)."""

from egress.sources.mysql.columns import column_fixes, logical_type, result_column
from egress.sources.mysql.connect import (
    BAD_SSL_CA,
    NOT_MYSQL,
    SUPERUSER_WARNING,
    WRITER_WARNING,
    connect_error_class,
)
from egress.sources.mysql.settings import MysqlSettings, admit
from egress.sources.mysql.source import MysqlSource

__all__ = [
    "BAD_SSL_CA",
    "NOT_MYSQL",
    "SUPERUSER_WARNING",
    "WRITER_WARNING",
    "MysqlSettings",
    "MysqlSource",
    "admit",
    "column_fixes",
    "connect_error_class",
    "logical_type",
    "result_column",
]
