"""The data-table loader: batches → a staging table → one merge into the managed table.

Everything happens in one warehouse transaction, so a failed or cancelled run leaves the table
as it was. A ledger table (`egress_loads`) records each run's load in that same transaction: a
run whose worker died after the load committed is not loaded twice by its next attempt.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection, Dialect, Engine

from egress.db.engine import snapshot_reads
from egress.domain.catalog import ColumnInfo
from egress.domain.data_tables import ROW_ID_COLUMN, case_clash, folds_case, reserved_column
from egress.domain.plan import ReadPlan
from egress.domain.types import parse_decimal, parse_list
from egress.sinks.render import json_list_column, json_renderer
from egress.sinks.writers import refuse_unrepresentable
from egress.sources.arrow_types import PYTHON_YEARS, arrow_schema, column_outside_years
from egress.sources.rows import bounded_rows, rows_to_batch

HIDDEN_ID = ROW_ID_COLUMN  # row id of tables without a primary key (keyset paging)
LEDGER = "egress_loads"


def raw_quote(name: str) -> str:
    """``name`` as a quoted identifier in a statement the driver sends as it is, with no
    parameters to format (a psycopg ``COPY``). Not the dialect's
    ``identifier_preparer.quote``, which doubles ``%`` for psycopg's pyformat: right in a
    statement executed with parameters (``exec_driver_sql``, whose ``%%`` psycopg turns back
    into ``%``), wrong in a ``COPY`` (before 2026-12-04 a column ``rate%`` failed every load
    into a PostgreSQL warehouse: column "rate%%" does not exist)."""
    return '"' + name.replace('"', '""') + '"'


class LoadError(Exception):
    """The load cannot proceed (e.g. a column changed type); the table is left untouched."""


@dataclass(frozen=True)
class LoadResult:
    rows: int  # records this run delivered
    created: bool = False  # this load made the table: it has only the columns loaded now


def canonical_decimal(number: Decimal) -> str:
    """The one text of a decimal's value: plain digits, no exponent, no trailing fractional
    zeros, ``0`` for any zero (``-0.00`` too), ``NaN``, ``Infinity``, ``-Infinity``. ``1.0``,
    ``1.00`` and ``1E+0`` are all ``1``, as they are one value (one key) in PostgreSQL."""
    if number.is_nan():
        return "NaN"
    if number.is_zero():
        return "0"
    # normalize() rounds to its context's precision, and overflows past its exponents
    exact = Context(prec=len(number.as_tuple().digits), Emax=MAX_EMAX, Emin=MIN_EMIN)
    return format(number.normalize(exact), "f")


class SqliteDecimal(sa.types.TypeDecorator[Any]):
    """A decimal on SQLite as its exact text (SQLite has no exact numeric type: NUMERIC is a
    float past 15 digits). ``decimal(p,s)`` is stored as its plain digits at scale ``s``, one
    text per value, so GROUP BY and ON CONFLICT compare values exactly; the unbounded
    ``decimal`` (text already) as the source wrote it, or, as an upsert key (``canonical``), as
    its ``canonical_decimal`` text, so that keys equal by value are one key. Ordered as text,
    not numerically."""

    impl = sa.Text
    cache_ok = True

    def __init__(self, scale: int | None, canonical: bool = False) -> None:
        super().__init__()
        self.scale = scale
        self.canonical = canonical

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or (self.scale is None and isinstance(value, str) and not self.canonical):
            return value
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if self.canonical:
            return canonical_decimal(number)
        if self.scale is not None and number.is_finite():
            room = Context(prec=len(number.as_tuple().digits) + self.scale + 1)  # not 28 digits
            exact = number.quantize(Decimal(1).scaleb(-self.scale), context=room)
            if exact != number:  # never rounded to fit
                raise ValueError(f"{value!r} has more than {self.scale} decimal places")
            number = exact
        return format(number, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None or self.scale is None:
            return value
        return Decimal(value)


class SqliteInterval(sa.types.UserDefinedType[timedelta]):
    """A duration on SQLite as whole microseconds (SQLAlchemy's Interval stores a datetime
    past 1970-01-01): exact, ordered, and read back by any reader as a number. Declared
    ``INTERVAL``, which SQLite gives INTEGER affinity, so a reader can tell it is a duration."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "INTERVAL"

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any]:
        def process(value: Any) -> Any:
            return _micros(value) if isinstance(value, timedelta) else value

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], Any]:
        return lambda v: timedelta(microseconds=v) if isinstance(v, int) else v


class SqliteUtcTimestamp(sqlite.DATETIME):
    """A timestamptz on SQLite as its UTC wall clock with ``+00:00``: read back (by
    ``fromisoformat``) in UTC, not as a naive time. Declared ``TIMESTAMP`` (a naive
    timestamp is ``DATETIME``) so a table made before, holding naive text, is told apart."""

    __visit_name__ = "TIMESTAMP"

    def __init__(self) -> None:
        super().__init__(  # type: ignore[no-untyped-call]
            storage_format=(
                "%(year)04d-%(month)02d-%(day)02d %(hour)02d:%(minute)02d:%(second)02d"
                ".%(microsecond)06d+00:00"
            )
        )

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        text = super().bind_processor(dialect)
        assert text is not None

        def process(value: Any) -> Any:  # the text is the UTC wall clock, whatever the zone
            if isinstance(value, datetime) and value.tzinfo is not None:
                value = value.astimezone(UTC)
            return text(value)

        return process


def _micros(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds


def sa_type(logical: str) -> sa.types.TypeEngine[Any]:
    dec = parse_decimal(logical)
    if dec is not None:
        return sa.Numeric(*dec).with_variant(SqliteDecimal(dec[1]), "sqlite")
    simple: dict[str, sa.types.TypeEngine[Any]] = {
        "boolean": sa.Boolean(),
        "int16": sa.SmallInteger(),
        "int32": sa.Integer(),
        "int64": sa.BigInteger(),
        "float32": sa.Float(precision=24),
        "float64": sa.Double(),
        "decimal": sa.Numeric().with_variant(SqliteDecimal(None), "sqlite"),
        "date": sa.Date(),
        "time": sa.Time(),
        "timestamp": sa.DateTime(),
        "timestamptz": sa.DateTime(timezone=True).with_variant(SqliteUtcTimestamp(), "sqlite"),
        "duration": sa.Interval().with_variant(SqliteInterval(), "sqlite"),
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
        # Reads never queue behind a load (on SQLite it holds the write lock throughout).
        self._reads = snapshot_reads(engine)
        self._ledger_made = False

    @property
    def backend(self) -> str:
        """The warehouse's database: ``sqlite`` or ``postgresql``."""
        return self.engine.url.get_backend_name()

    def has_table(self, name: str) -> bool:
        """Whether a table's first load has committed."""
        with self._reads.connect() as conn:
            return sa.inspect(conn).has_table(name)

    def columns(self, name: str) -> list[str] | None:
        """The columns of table ``name`` as last committed, in their order (the hidden row id
        left out); None before its first load has committed."""
        with self._reads.connect() as conn:
            inspector = sa.inspect(conn)
            if not inspector.has_table(name):
                return None
            return [c["name"] for c in inspector.get_columns(name) if c["name"] != HIDDEN_ID]

    def row_count(self, name: str) -> int:
        """The rows of table ``name`` as last committed (0 before its first load has)."""
        with self._reads.connect() as conn:
            return _count(conn, name)

    def refuse_unholdable_columns(self, name: str, fields: list[ColumnInfo]) -> None:
        """Before a load (before its data table is recorded): ``LoadError`` when table
        ``name``, with the columns it has so far (none before its first load), cannot hold
        ``fields`` apart, or one of them is named as the hidden row id (``reserved_column``).
        ``load`` checks both again in its transaction."""
        if folds_case(self.backend):
            with self._reads.connect() as conn:
                _refuse_case_clash(conn, name, fields)
        if problem := reserved_column((f.name for f in fields), self.backend):
            raise LoadError(problem)

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
        """Load ``batches`` into ``name``; ``known`` is the schema the table had so far (that
        of a failed first load's attempt, which made no table, is not checked)."""
        missing = [k for k in primary_key if k not in {f.name for f in fields}]
        if missing:
            raise LoadError(
                f"the data table merges by ({', '.join(primary_key)}) and the extraction does "
                f"not deliver {', '.join(map(repr, missing))}"
            )
        self._ensure_ledger()
        with self.engine.begin() as conn:
            meta = sa.MetaData()
            ledger = _ledger(meta)
            done = conn.execute(
                sa.select(ledger.c.rows).where(ledger.c.run_id == run_id)
            ).scalar_one_or_none()
            table = target_table(meta, name, fields, primary_key)
            if done is not None:  # an earlier attempt of this run committed its load
                return LoadResult(int(done))
            created = not _exists_or_locked(conn, name)
            if not created:
                _check_types(fields, known)
            _refuse_case_clash(conn, name, fields)
            if problem := reserved_column((f.name for f in fields), self.backend):
                raise LoadError(problem)
            table.create(conn, checkfirst=True)
            _refuse_inexact_columns(conn, table.name, fields)
            _add_new_columns(conn, table, fields)
            _canonicalise_old_decimal_keys(conn, table.name, fields, primary_key)
            stage = self._stage(conn, fields, primary_key)
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
                _merge(conn, table, stage, fields, primary_key, mode)
            conn.execute(ledger.insert().values(run_id=run_id, table_name=name, rows=rows))
            stage.drop(conn)
            before_commit()
        return LoadResult(rows, created)

    def _ensure_ledger(self) -> None:
        """The ledger table, made once by the first load (its own short transaction: another
        first load, of any table, waits only for that)."""
        if self._ledger_made:
            return
        with self.engine.begin() as conn:
            if not _exists_or_locked(conn, LEDGER):
                _ledger(sa.MetaData()).create(conn, checkfirst=True)
        self._ledger_made = True

    def _stage(self, conn: Connection, fields: list[ColumnInfo], keys: list[str]) -> sa.Table:
        name = f"egress_stage_{secrets.token_hex(6)}"
        columns = [
            sa.Column(
                f.name, _key_type() if f.name in keys and f.type == "decimal" else sa_type(f.type)
            )
            for f in fields
        ]
        stage = sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
        stage.create(conn)
        return stage

    def _insert(self, conn: Connection, stage: sa.Table, batch: pa.RecordBatch) -> None:
        refuse_unrepresentable(batch, "a data table")
        _refuse_years_beyond_python(batch)
        names = batch.schema.names
        columns = [_values(f, col) for f, col in zip(batch.schema, batch.columns, strict=True)]
        if conn.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            assert raw is not None
            cols = ", ".join(raw_quote(n) for n in names)
            quoted = raw_quote(stage.name)
            with raw.cursor() as cur, cur.copy(f"COPY {quoted} ({cols}) FROM STDIN") as copy:
                for row in zip(*columns, strict=True):
                    copy.write_row(row)
            return
        _refuse_nan(batch)
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        if rows:
            conn.execute(stage.insert(), rows)

    def rows(
        self, name: str, order: list[str], types: list[str], after: list[Any] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Keyset page of a table, for previews: keys ``order`` of logical ``types``, whose
        values ``after`` are bound as the load wrote their columns (``sa_type``): SQLite
        compares the very text it stores (a bare datetime lacks its timestamptz's '+00:00')."""
        with self._reads.connect() as conn:
            if not sa.inspect(conn).has_table(name):  # its first load has not committed yet
                return []
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            if conn.dialect.name == "sqlite":  # durations are reflected as their integer
                for column, declared in _declared_types(conn, name).items():
                    if declared == "INTERVAL":
                        table.c[column].type = SqliteInterval()
            keys = [table.c[k] for k in order]
            query = sa.select(table).order_by(*keys).limit(limit)
            if after is not None:
                bound = [sa.literal(v, sa_type(t)) for v, t in zip(after, types, strict=True)]
                query = query.where(sa.tuple_(*keys) > sa.tuple_(*bound))
            return [dict(r._mapping) for r in conn.execute(query)]

    def read(
        self, name: str, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        """A table's rows as ``plan`` asks (fields; keyset ``after``/``order``/``limit``),
        streamed through a server-side cursor in bounded batches: a bulk export's reader."""
        schema = arrow_schema(plan.fields)
        with self._reads.connect() as conn:
            if not sa.inspect(conn).has_table(name):  # never loaded yet: no rows
                return
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            # Each column read and each cursor value bound through the type the load wrote it
            # with (``sa_type``): SQLite compares the very text or number it stores, and
            # reflection alone does not tell a duration from an integer.
            typed = {f.name: sa_type(f.type) for f in plan.fields}
            keys = [table.c[k] for k in plan.order]
            query = sa.select(
                *[sa.type_coerce(table.c[f.name], typed[f.name]) for f in plan.fields]
            ).order_by(*keys)
            if plan.after is not None:
                # The cursor's values are typed (``key_value``): never compared as their text.
                bound = [
                    sa.literal(v, typed[k]) for k, v in zip(plan.order, plan.after, strict=True)
                ]
                query = query.where(sa.tuple_(*keys) > sa.tuple_(*bound))
            if plan.limit is not None:
                query = query.limit(plan.limit)
            result = conn.execution_options(stream_results=True, yield_per=batch_rows).execute(
                query
            )
            # Stored as the JSONL writer's JSON text (``_values``), read back as lists.
            lists = {
                i: _list_items(element)
                for i, f in enumerate(plan.fields)
                if (element := parse_list(f.type)) is not None
            }
            for rows in bounded_rows(result, plan.fields, batch_rows, batch_bytes):
                if lists:
                    rows = [
                        [v if v is None or i not in lists else lists[i](v) for i, v in enumerate(r)]
                        for r in rows
                    ]
                yield rows_to_batch(rows, plan.fields, schema)


def _list_items(element: str) -> Callable[[str], list[Any]]:
    """A list's stored JSON text back to its values: each element as the JSONL writer renders
    it (binary base64, floats' NaN and infinities as words, timestamps, dates and times ISO,
    decimals as strings of their digits) parsed back to the element's type."""
    item: Callable[[Any], Any] = _ITEMS.get(element, lambda v: v)
    if parse_decimal(element) is not None:
        item = Decimal

    def values(text: str) -> list[Any]:
        return [None if v is None else item(v) for v in json.loads(text)]

    return values


_ITEMS: dict[str, Callable[[Any], Any]] = {
    "binary": base64.b64decode,
    "float32": float,  # a number, or "NaN", "Infinity", "-Infinity"
    "float64": float,
    "timestamp": datetime.fromisoformat,
    "timestamptz": datetime.fromisoformat,  # "…Z": UTC
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
}


def _values(field: pa.Field, col: pa.Array) -> list[Any]:
    if pa.types.is_list(col.type):  # stored as the JSON text a JSONL export writes
        text: list[Any] = json_list_column(col, json_renderer(field)).to_pylist()
        return text
    values: list[Any] = col.to_pylist()
    return values


def _refuse_nan(batch: pa.RecordBatch) -> None:
    """SQLite stores a NaN REAL as NULL: rather than lose it, the load fails (a text 'NaN' in
    the column would be exact, but no reader of a REAL column takes it back)."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        if pa.types.is_floating(col.type) and pc.any(pc.is_nan(col)).as_py():
            raise LoadError(
                f"column {field.name!r} holds NaN, which a data table in a SQLite warehouse"
                " cannot hold (SQLite stores it as NULL); use a PostgreSQL warehouse"
                " (EGRESS_WAREHOUSE_URL), or filter it out with a whereClause"
            )


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


# pg_advisory_xact_lock(space, hashtext(table)): its two-key space is apart from the one-key
# locks of a metadata database that may share the warehouse's (db.transitions).
_CREATING = sa.text("SELECT pg_advisory_xact_lock(hashtext('egress warehouse'), hashtext(:name))")


def _exists_or_locked(conn: Connection, name: str) -> bool:
    """Whether table ``name`` exists; when it does not, this transaction takes (on
    PostgreSQL) the lock of its creation first, held to its end, and asks again: of two
    transactions about to create the same table, the second waits for the first's commit and
    then finds it. Two first loads at once failed one run with an internal UniqueViolation on
    ``CREATE TABLE`` before 2026-12-04 (each had found no table). A SQLite warehouse's write
    transaction is one at a time already."""
    if sa.inspect(conn).has_table(name):
        return True
    if conn.dialect.name != "postgresql":
        return False
    conn.execute(_CREATING, {"name": name})
    return sa.inspect(conn).has_table(name)


def _check_types(fields: list[ColumnInfo], known: list[ColumnInfo]) -> None:
    before = {f.name: f.type for f in known}
    for f in fields:
        if f.name in before and before[f.name] != f.type:
            raise LoadError(
                f"column {f.name!r} of the data table is {before[f.name]} but the extraction now "
                f"delivers {f.type}; load into a new data table or restore the source type"
            )


def _declared_types(conn: Connection, name: str) -> dict[str, str]:
    prep = conn.dialect.identifier_preparer
    info = conn.exec_driver_sql(f"PRAGMA table_info({prep.quote(name)})")
    return {row[1]: str(row[2]).upper() for row in info}


# Types whose SQLite storage changed (see SqliteDecimal, SqliteInterval, SqliteUtcTimestamp).
_RESTORED = ("decimal", "duration", "timestamptz")


def _refuse_inexact_columns(conn: Connection, name: str, fields: list[ColumnInfo]) -> None:
    """A SQLite table made by an earlier release holds decimals as floats (NUMERIC affinity
    turns even exact text back into a float), durations as datetimes and timestamptz as
    naive text: a new load could neither store exactly nor match its keys, so it fails."""
    if conn.dialect.name != "sqlite":
        return
    declared = _declared_types(conn, name)
    for f in fields:
        if f.name not in declared or not f.type.startswith(_RESTORED):
            continue
        wanted = str(sa_type(f.type).compile(dialect=conn.dialect)).upper()
        if declared[f.name] != wanted:
            raise LoadError(
                f"column {f.name!r} ({f.type}) of the data table was made by an earlier Egress"
                f" release as {declared[f.name]}, in which SQLite cannot store its values"
                " exactly; load into a new data table"
            )


def _refuse_case_clash(conn: Connection, name: str, fields: list[ColumnInfo]) -> None:
    """Columns whose names differ only in letter case are one column to SQLite: a load that
    would make them fails naming them (``case_clash``), before the table or a column is made."""
    if not folds_case(conn.dialect.name):  # PostgreSQL keeps them apart: nothing to ask
        return
    inspector = sa.inspect(conn)
    existing = [c["name"] for c in inspector.get_columns(name)] if inspector.has_table(name) else []
    problem = case_clash([*existing, *(f.name for f in fields)], conn.dialect.name)
    if problem is not None:
        raise LoadError(problem)


def _add_new_columns(conn: Connection, table: sa.Table, fields: list[ColumnInfo]) -> None:
    existing = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    prep = conn.dialect.identifier_preparer
    for f in fields:
        if f.name not in existing:
            ddl = sa_type(f.type).compile(dialect=conn.dialect)
            # Another load may add the same column meanwhile: it waits for that one's commit,
            # then finds the column (SQLite's write transactions are one at a time).
            maybe = " IF NOT EXISTS" if conn.dialect.name == "postgresql" else ""
            column = f"{prep.quote(f.name)} {ddl}"
            conn.exec_driver_sql(f"ALTER TABLE {prep.quote(table.name)} ADD COLUMN{maybe} {column}")


def _key_type() -> sa.types.TypeEngine[Any]:
    """An unbounded decimal upsert key: on SQLite its canonical text (see SqliteDecimal)."""
    return sa.Numeric().with_variant(SqliteDecimal(None, canonical=True), "sqlite")


_CANONICAL = "egress_canonical_decimal"

# Every text that is not its canonical_decimal matches one of these (native, so the Python
# function runs on those rows only): anything but digits, "." and "-" (an exponent, NaN…),
# a "-" inside, two points, a point first or last, a trailing fractional zero, a leading zero,
# "-0". What matches none is -?(0|[1-9][0-9]*)(.[0-9]*[1-9])?, canonical already.
_MAYBE_NOT_CANONICAL = (
    "*[^0-9.-]*",
    "?*-*",
    "*.*.*",
    ".*",
    "-.*",
    "*.",
    "*.*0",
    "0[0-9]*",
    "-0[0-9]*",
    "-0",
)


def _canonical_text(text: str | None) -> str | None:
    return None if text is None else canonical_decimal(Decimal(text))


def _canonicalise_old_decimal_keys(
    conn: Connection, name: str, fields: list[ColumnInfo], primary_key: list[str]
) -> None:
    """An earlier release stored a SQLite upsert key of the unbounded ``decimal`` as the
    source's text, so ``1.0`` and a later ``1.00`` were two rows. Such old keys are rewritten
    to their canonical text (in the load's transaction) so that the merge matches them; a
    table that already holds two keys equal by value cannot tell which row is current: it
    fails. A scan of the key column(s) each load; a row is rewritten once."""
    keys = [f.name for f in fields if f.name in primary_key and f.type == "decimal"]
    if conn.dialect.name != "sqlite" or not keys:
        return
    raw = conn.connection.driver_connection
    assert raw is not None
    raw.create_function(_CANONICAL, 1, _canonical_text, deterministic=True)
    q = conn.dialect.identifier_preparer.quote
    updates = ", ".join(f"{q(k)} = {_CANONICAL}({q(k)})" for k in keys)
    # Canonical NaN and infinities match too: rewritten to themselves, as are their rows.
    where = " OR ".join(f"{q(k)} GLOB '{shape}'" for k in keys for shape in _MAYBE_NOT_CANONICAL)
    try:
        conn.exec_driver_sql(f"UPDATE {q(name)} SET {updates} WHERE {where}")
    except sa.exc.IntegrityError:
        raise LoadError(
            f"the data table holds keys equal by value but written differently (e.g. 1.0 and"
            f" 1.00) in key column {', '.join(map(repr, keys))}, as an earlier Egress release"
            " stored them on SQLite, and one of each is stale; load into a new data table"
        ) from None


def _refuse_repeated_keys(
    conn: Connection, stage: sa.Table, fields: list[ColumnInfo], primary_key: list[str]
) -> None:
    """A key the source delivers twice in one load has no one row to merge (which of them is
    "last" depends on the read's order): the whole load fails, naming the key, how many of its
    values repeat, and the first of them. One GROUP BY over the stage; memory stays in SQL."""
    keys = [stage.c[k] for k in primary_key]
    found = conn.execute(
        sa.select(*keys, sa.func.count(), sa.func.count().over())  # its rows; values repeated
        .group_by(*keys)
        .having(sa.func.count() > 1)
        .order_by(*keys)
        .limit(1)
    ).first()
    if found is None:
        return
    *example, rows, repeated = found
    types = {f.name: f.type for f in fields}
    shown = ", ".join(
        f"{k} = {_shown(v, types[k])}" for k, v in zip(primary_key, example, strict=True)
    )
    raise LoadError(
        f"the data table's key cannot repeat in one load, and the source repeats {repeated}"
        f" value{'s' if repeated > 1 else ''} of key column{'s' if len(keys) > 1 else ''}"
        f" {', '.join(map(repr, primary_key))} ({'e.g. ' if repeated > 1 else ''}{shown} in"
        f" {rows} rows); nothing was loaded"
    )


def _shown(value: Any, logical: str) -> str:
    """A key value in a message: text quoted, a decimal as its digits, cut at 60 characters."""
    if isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, str) and logical != "decimal" and parse_decimal(logical) is None:
        text = repr(value)
    else:
        text = str(value)
    return text if len(text) <= 60 else f"{text[:59]}…"


_CARDINALITY_VIOLATION = "21000"  # SQLSTATE


def _merge(
    conn: Connection,
    table: sa.Table,
    stage: sa.Table,
    fields: list[ColumnInfo],
    primary_key: list[str],
    mode: str,
) -> None:
    q = conn.dialect.identifier_preparer.quote
    names = [f.name for f in fields]
    cols = ", ".join(q(n) for n in names)
    target, staged = q(table.name), q(stage.name)
    if mode == "append":
        conn.exec_driver_sql(f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged}")
        return
    keys = ", ".join(q(k) for k in primary_key)
    updates = ", ".join(f"{q(n)} = excluded.{q(n)}" for n in names if n not in primary_key)
    action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
    # "WHERE true": SQLite would read the ON of ON CONFLICT as a join's constraint.
    merge = (
        f"INSERT INTO {target} ({cols}) SELECT {cols} FROM {staged} WHERE true"
        f" ON CONFLICT ({keys}) {action}"
    )
    if conn.dialect.name == "postgresql" and updates:
        # PostgreSQL's DO UPDATE refuses a key twice in one statement (a cardinality
        # violation, 21000) by itself: the stage is grouped only to tell which key repeats.
        try:
            with conn.begin_nested():
                conn.exec_driver_sql(merge)
        except sa.exc.DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _CARDINALITY_VIOLATION:
                _refuse_repeated_keys(conn, stage, fields, primary_key)
            raise
        return
    # SQLite's DO UPDATE lets the last row win, and DO NOTHING keeps the first, silently.
    _refuse_repeated_keys(conn, stage, fields, primary_key)
    conn.exec_driver_sql(merge)


def _count(conn: Connection, name: str) -> int:
    if not sa.inspect(conn).has_table(name):
        return 0
    return int(conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one())
