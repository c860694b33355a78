"""The one protocol every connector implements."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, BinaryIO, Protocol, runtime_checkable

import pyarrow as pa

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.plan import ReadPlan


class SourceError(Exception):
    """A problem with the source a user can act on (the driver's message, cleaned up)."""


class QueryError(SourceError):
    """The source was reached but refused the query itself (bad SQL, unknown table, …)."""


def clean(exc: BaseException) -> str:
    """A driver's message on one line (or the exception's class when it has none)."""
    return " ".join(str(exc).split()) or type(exc).__name__


# Describing a SQL template runs its LIMIT 0 probe inside an API request: a query that makes
# even that slow (a sleep, a function over a huge table) is refused rather than holding it.
PROBE_TIMEOUT_S = 30.0


def probe_too_slow() -> str:
    return f"the query did not return its columns within {PROBE_TIMEOUT_S:g} s (LIMIT 0 probe)"


class Source(Protocol):
    def check(self) -> None:
        """Connect and run a trivial query; raise SourceError with the driver's message."""

    def catalog(self) -> list[TableInfo]:
        """Every readable table and view with its columns and primary key."""

    def read(self, plan: ReadPlan, batch_rows: int) -> Iterator[pa.RecordBatch]:
        """Stream the plan's rows as batches conforming to ``arrow_schema(plan.fields)``."""

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        """The largest value of ``field`` now (an incremental run's high-water mark)."""

    def close(self) -> None: ...


@runtime_checkable
class QuerySource(Protocol):
    """A source that speaks SQL, so it can read a SQL template's query (files cannot)."""

    dialect: str  # sqlglot's name for the source's SQL, e.g. "postgres"

    def describe(self, query: str) -> list[ColumnInfo]:
        """The result columns of a checked query, from a ``LIMIT 0`` probe; QueryError when
        the source refuses the query."""


class CsvFastPath(Protocol):
    """A source that can write the plan's rows as CSV itself, faster than through Arrow."""

    def can_copy_csv(self, plan: ReadPlan) -> bool: ...

    def copy_csv(self, plan: ReadPlan, out: BinaryIO, on_progress: ProgressFn) -> int:
        """Write data rows (no header) in Egress's CSV format; return the row count."""


class ProgressFn(Protocol):
    def __call__(self, processed: int) -> None: ...
