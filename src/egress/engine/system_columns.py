"""The system columns of a configuration's data-table loads (``domain.data_tables``): one
value per run for every row, appended to each batch on its way to the warehouse."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

import pyarrow as pa

from egress.domain.catalog import ColumnInfo
from egress.domain.data_tables import SYSTEM_COLUMNS
from egress.sources.arrow_types import arrow_type


def with_system_fields(fields: list[ColumnInfo]) -> list[ColumnInfo]:
    return [*fields, *SYSTEM_COLUMNS]


def with_system_columns(
    batches: Iterable[pa.RecordBatch], account: str | None, inserted_at: datetime
) -> Iterator[pa.RecordBatch]:
    """Each batch with ``account_id``/``account_name`` (the account read) and
    ``__insert_date`` (when the run began loading) added."""
    values = (account, account, inserted_at)
    for batch in batches:
        extra = [
            pa.repeat(pa.scalar(value, arrow_type(column.type)), batch.num_rows)
            for column, value in zip(SYSTEM_COLUMNS, values, strict=True)
        ]
        yield pa.RecordBatch.from_arrays(
            [*batch.columns, *extra],
            names=[*batch.schema.names, *(c.name for c in SYSTEM_COLUMNS)],
        )
