"""The data-table loader: batches → a staging table → one merge into the managed table.

Everything happens in one warehouse transaction, so a failed or cancelled run leaves the table
as it was. A ledger table (`egress_loads`) records each run's load in that same transaction: a
run whose worker died after the load committed is not loaded twice by its next attempt.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import time
from decimal import Decimal
from typing import Any

import pyarrow as pa
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import parse_decimal
from egress.sinks.writers import refuse_unrepresentable
from egress.sources.arrow_types import PYTHON_YEARS, arrow_schema, column_outside_years
from egress.sources.rows import bounded_rows, rows_to_batch

HIDDEN_ID = "_egress_id"  # row id of tables without a primary key (keyset paging)
LEDGER = "egress_loads"


class LoadError(Exception):
    """The load cannot proceed (e.g. a column changed type); the table is left untouched."""


@dataclass(frozen=True)
class LoadResult:
    rows: int  # records this run delivered
    table_rows: int  # rows in the table afterwards


def sa_type(logical: str) -> sa.types.TypeEngine[Any]:
    dec = parse_decimal(logical)
    if dec is not None:
        return sa.Numeric(*dec)
    simple: dict[str, sa.types.TypeEngine[Any]] = {
        "boolean": sa.Boolean(),
        "int16": sa.SmallInteger(),
        "int32": sa.Integer(),
        "int64": sa.BigInteger(),
        "float32": sa.Float(precision=24),
        "float64": sa.Double(),
        "decimal": sa.Numeric(),
        "date": sa.Date(),
        "time": sa.Time(),
        "timestamp": sa.DateTime(),
        "timestamptz": sa.DateTime(timezone=True),
        "duration": sa.Interval(),
        "binary": sa.LargeBinary(),
    }
    return simple.get(logical, sa.Text())  # strings, JSON, UUIDs, and lists as JSON text


def _ledger(meta: sa.MetaData) -> sa.Table:
    return sa.Table(
        LEDGER,
        meta,
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("table_name", sa.String(63), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
    )


def target_table(
    meta: sa.MetaData, name: str, fields: list[ColumnInfo], primary_key: list[str]
) -> sa.Table:
    columns: list[sa.Column[Any]] = []
    if not primary_key:
        columns.append(
            sa.Column(
                HIDDEN_ID,
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                primary_key=True,
                autoincrement=True,
            )
        )
    columns += [
        sa.Column(f.name, sa_type(f.type), primary_key=f.name in primary_key, autoincrement=False)
        for f in fields
    ]
    # On SQLite a keyed table has no rowid: an INTEGER PRIMARY KEY would otherwise be the rowid,
    # which turns a NULL key into a new number instead of refusing it.
    return sa.Table(name, meta, *columns, sqlite_with_rowid=not primary_key)


class Warehouse:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def load(
        self,
        run_id: str,
        name: str,
        fields: list[ColumnInfo],
        known: list[ColumnInfo],
        primary_key: list[str],
        mode: str,
        batches: Iterable[pa.RecordBatch],
        before_commit: Callable[[], None],
        on_rows: Callable[[int], None],
    ) -> LoadResult:
        """Load ``batches`` into ``name``; ``known`` is the schema the table had so far."""
        _check_types(fields, known)
        missing = [k for k in primary_key if k not in {f.name for f in fields}]
        if missing:
            raise LoadError(
                f"the data table merges by ({', '.join(primary_key)}) and the extraction does "
                f"not deliver {', '.join(map(repr, missing))}"
            )
        with self.engine.begin() as conn:
            meta = sa.MetaData()
            ledger = _ledger(meta)
            ledger.create(conn, checkfirst=True)
            done = conn.execute(
                sa.select(ledger.c.rows).where(ledger.c.run_id == run_id)
            ).scalar_one_or_none()
            table = target_table(meta, name, fields, primary_key)
            if done is not None:  # an earlier attempt of this run committed its load
                return LoadResult(int(done), _count(conn, table))
            table.create(conn, checkfirst=True)
            _add_new_columns(conn, table, fields)
            stage = self._stage(conn, fields)
            rows = 0
            null_keys = dict.fromkeys(primary_key, 0)
            for batch in batches:
                for key in primary_key:
                    null_keys[key] += batch.column(key).null_count
                self._insert(conn, stage, batch)
                rows += batch.num_rows
                on_rows(rows)
            _refuse_null_keys(null_keys)
            if rows:
                _merge(conn, table, stage, [f.name for f in fields], primary_key, mode)
            conn.execute(ledger.insert().values(run_id=run_id, table_name=name, rows=rows))
            stage.drop(conn)
            count = _count(conn, table)
            before_commit()
        return LoadResult(rows, count)

    def _stage(self, conn: Connection, fields: list[ColumnInfo]) -> sa.Table:
        name = f"egress_stage_{secrets.token_hex(6)}"
        columns = [sa.Column(f.name, sa_type(f.type)) for f in fields]
        if conn.dialect.name == "postgresql":  # load order; SQLite has its rowid
            columns.insert(0, sa.Column("_seq", sa.BigInteger(), sa.Identity()))
        stage = sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
        stage.create(conn)
        return stage

    def _insert(self, conn: Connection, stage: sa.Table, batch: pa.RecordBatch) -> None:
        refuse_unrepresentable(batch, "a data table")
        _refuse_years_beyond_python(batch)
        names = batch.schema.names
        columns = [_values(col) for col in batch.columns]
        if conn.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            cols = ", ".join(conn.dialect.identifier_preparer.quote(n) for n in names)
            quoted = conn.dialect.identifier_preparer.quote(stage.name)
            with raw.cursor() as cur, cur.copy(f"COPY {quoted} ({cols}) FROM STDIN") as copy:
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            return
        rows = [
            {n: _sqlite_value(v) for n, v in zip(names, row, strict=True)}
            for row in zip(*columns, strict=True)
        ]
        if rows:
            conn.execute(stage.insert(), rows)

    def rows(
        self, name: str, order: list[str], after: list[Any] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Keyset page of a table, for previews."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name):  # its first load has not committed yet
                return []
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            keys = [table.c[k] for k in order]
            query = sa.select(table).order_by(*keys).limit(limit)
            if after is not None:
                query = query.where(sa.tuple_(*keys) > sa.tuple_(*after))
            return [dict(r._mapping) for r in conn.execute(query)]

    def read(
        self, name: str, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """A table's rows as ``plan`` asks (fields; keyset ``after``/``order``/``limit``),
        streamed through a server-side cursor in bounded batches: a bulk export's reader."""
        schema = arrow_schema(plan.fields)
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table(name):  # never loaded yet: no rows
                return
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            keys = [table.c[k] for k in plan.order]
            query = sa.select(*[table.c[f.name] for f in plan.fields]).order_by(*keys)
            if plan.after is not None:
                query = query.where(sa.tuple_(*keys) > sa.tuple_(*plan.after))
            if plan.limit is not None:
                query = query.limit(plan.limit)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
                query
            )
            for rows in bounded_rows(result, plan.fields, batch_rows, batch_bytes):
                yield rows_to_batch(rows, plan.fields, schema)


def _values(col: pa.Array) -> list[Any]:
    values: list[Any] = col.to_pylist()
    if pa.types.is_list(col.type):  # stored as JSON array text
        return [None if v is None else json.dumps(v, default=str) for v in values]
    return values


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, time):
        return value.isoformat()
    return value


def _refuse_years_beyond_python(batch: pa.RecordBatch) -> None:
    """Rows reach the warehouse as Python values: a BC or five-digit year has none."""
    name = column_outside_years(batch, PYTHON_YEARS)
    if name is not None:
        raise LoadError(
            f"column {name!r} holds a value dated outside the years 1 to 9999, which a data"
            " table cannot hold; export it as a file, or filter it out with a whereClause"
        )


def _refuse_null_keys(null_keys: dict[str, int]) -> None:
    """A row without its key cannot be merged: the whole load fails, naming every key column
    that was NULL and in how many rows."""
    nulls = [f"{key!r} in {n} row{'s' if n > 1 else ''}" for key, n in null_keys.items() if n]
    if nulls:
        raise LoadError(
            f"the data table's key cannot be NULL, and the source has NULL in key column "
            f"{', '.join(nulls)}; nothing was loaded"
        )


def _check_types(fields: list[ColumnInfo], known: list[ColumnInfo]) -> None:
    before = {f.name: f.type for f in known}
    for f in fields:
        if f.name in before and before[f.name] != f.type:
            raise LoadError(
                f"column {f.name!r} of the data table is {before[f.name]} but the extraction now "
                f"delivers {f.type}; load into a new data table or restore the source type"
            )


def _add_new_columns(conn: Connection, table: sa.Table, fields: list[ColumnInfo]) -> None:
    existing = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    prep = conn.dialect.identifier_preparer
    for f in fields:
        if f.name not in existing:
            ddl = sa_type(f.type).compile(dialect=conn.dialect)
            conn.exec_driver_sql(
                f"ALTER TABLE {prep.quote(table.name)} ADD COLUMN {prep.quote(f.name)} {ddl}"
            )


def _merge(
    conn: Connection,
    table: sa.Table,
    stage: sa.Table,
    names: list[str],
    primary_key: list[str],
    mode: str,
) -> None:
    q = conn.dialect.identifier_preparer.quote
    cols = ", ".join(q(n) for n in names)
    target, staged = q(table.name), q(stage.name)
    if mode == "append":
        conn.exec_driver_sql(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}")
        return
    keys = ", ".join(q(k) for k in primary_key)
    updates = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names if n not in primary_key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    # Within one load the last row for a key wins.
    if conn.dialect.name == "postgresql":
        source = (
            f"SELECT DISTINCT ON ({keys}) {cols} FROM {staged} ORDER BY {keys}, {q('_seq')} DESC"
        )
    else:
        source = (
            f"SELECT {cols} FROM {staged} WHERE rowid IN"
            f" (SELECT max(rowid) FROM {staged} GROUP BY {keys})"
        )
    conn.exec_driver_sql(f"INSERT INTO {target} ({cols}) {source} ON CONFLICT ({keys}) {action}")


def _count(conn: Connection, table: sa.Table) -> int:
    exists = sa.inspect(conn).has_table(table.name)
    if not exists:
        return 0
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())
