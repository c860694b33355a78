"""SQLite files, read with the standard library.

ADBC's SQLite driver infers each column's type from the first rows it sees and fails the
whole read when a later row disagrees (a column that starts with NULLs, say). SQLite is
dynamically typed, so we read with sqlite3 and build batches against the declared schema.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlglot import exp

from egress.domain.catalog import ColumnInfo, TableInfo, TableRef, with_enforced_keys
from egress.domain.errors import Invalid
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type
from egress.query.custom import probe_statement, subquery
from egress.query.select import (
    TEMPORAL,
    Params,
    Statement,
    column,
    conditions,
    later_statement,
    relation,
    select_statement,
    sqlite_value,
    table_sql,
)
from egress.query.where import Comparisons
from egress.sources import base, confine
from egress.sources.arrow_types import arrow_schema, logical_from_arrow
from egress.sources.base import OpenCalls, QueryError, SourceError
from egress.sources.marks import mark_statement
from egress.sources.policy import SourcePolicy
from egress.sources.rows import ColumnFix, bounded_rows, read_timestamp, rows_to_batch

SCHEMA = "main"
_PROBE_VIEW = "egress_probe"
# Rows read to type a query's computed columns, which have no declared type (see describe).
_SAMPLE_ROWS = 1000
log = logging.getLogger(__name__)
# SQLite virtual machine steps between two looks at the interrupt flag (well under 1 ms).
_PROGRESS_STEPS = 10_000
_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")
# Bytes of a BLOB shown in an error, as a SQLite literal (X'00FF'); a longer one is cut.
_BLOB_SHOWN = 32


class SqliteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _plain(cls, value: str) -> str:
        return confine.checked_spelling(value)


def admit(settings: SqliteSettings, policy: SourcePolicy) -> None:
    """A saved path must lie in a files root (checked again whenever the source is opened)."""
    try:
        confine.confined(settings.path, policy)
    except confine.PathRefused as exc:
        raise Invalid.at(("body", "settings", "path"), str(exc)) from exc


def logical_type(declared: str) -> str:
    """Map a declared column type onto a logical type, following SQLite's affinity rules."""
    t = declared.upper()
    if (m := _DECIMAL.search(t)) is not None:
        return decimal_type(int(m.group(1)), int(m.group(2) or 0))
    for needle, logical in (
        ("BOOL", "boolean"),
        ("INT", "int64"),
        ("TIMESTAMPTZ", "timestamptz"),
        ("DATETIME", "timestamp"),
        ("TIMESTAMP", "timestamp"),
        ("DATE", "date"),
        ("TIME", "time"),
        ("UUID", "uuid"),
        ("JSON", "json"),
        ("CHAR", "string"),
        ("CLOB", "string"),
        ("TEXT", "string"),
        ("BLOB", "binary"),
        ("REAL", "float64"),
        ("FLOA", "float64"),
        ("DOUB", "float64"),
        ("NUMERIC", "float64"),
        ("DECIMAL", "float64"),
    ):
        if needle in t:
            return logical
    return "string"


def _sampled_type(values: list[Any]) -> str:
    """The logical type of a computed column's values: Arrow's inference over the non-null
    ones; text when they disagree (integers and reals make float64) or there are none."""
    try:
        return logical_from_arrow(pa.array([v for v in values if v is not None]).type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return "string"


def _no_blobs(logical: str) -> ColumnFix:
    """SQLite lets any column hold a BLOB; only a binary column reads one. Anywhere else no
    reading of bytes is exact: they may be text in any encoding, a binary UUID or SQLite's
    JSONB, and rows.py reads bytes in an integer or boolean column as MySQL's BIT (X'0102'
    would be 258)."""

    def fix(name: str, values: list[Any]) -> list[Any]:
        if bytes in map(type, values):  # sqlite3 gives a BLOB as bytes; this pass runs in C
            blob = next(v for v in values if isinstance(v, bytes))
            shown = f"X'{blob[:_BLOB_SHOWN].hex().upper()}'"
            if len(blob) > _BLOB_SHOWN:
                shown = f"{shown[:-1]}…' ({len(blob)} bytes)"
            raise SourceError(
                f"column {name!r} is declared {logical} but holds the BLOB {shown}: a BLOB is"
                " read only into a binary column; convert it in a SQL template (e.g. hex() or"
                " CAST(… AS TEXT))"
            )
        return values

    return fix


_INSTANT = "egress_instant"
# Text already a prefix of the canonical form (Python's sqlite3 and most writers store it): once
# Python reads it as a date and time, it only lacks zeros. Formatting each row cost more.
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\d(?: \d\d:\d\d:\d\d(?:\.\d{6})?)?", re.ASCII)
_PADDING = {10: " 00:00:00.000000", 19: ".000000", 26: ""}


def instant_text(value: Any) -> str | None:
    """``egress_instant()``: a date or time as a run reads it (rows.py: ISO 8601 text in any
    form, its offset applied; a date is its midnight; a number is unix seconds), as UTC text
    ``YYYY-MM-DD HH:MM:SS.ffffff`` of fixed width, which sorts as the instants do. NULL for
    anything else (text that is no date, a BLOB): such a value compares as unknown, so a
    filter leaves its row out (a run that selects the row fails reading it)."""
    try:
        if type(value) is str and _CANONICAL.fullmatch(value):
            datetime.fromisoformat(value)  # a real day and time of day
            return value + _PADDING[len(value)]
        if isinstance(value, bool):
            return None
        moment = read_timestamp(value, True).astimezone(UTC)
    except (ValueError, TypeError, OverflowError):
        return None
    text = moment.replace(tzinfo=None).isoformat(" ")
    return text if len(text) == 26 else f"{text}.000000"


def _instant_column(node: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=_INSTANT, expressions=[node])


def _instant_value(value: Any) -> str | None:
    """A value compared with a date or time column, as ``egress_instant()`` reads the column;
    one that is no date or time fails the run (PostgreSQL refuses it too)."""
    if value is None:
        return None
    text = instant_text(float(value) if isinstance(value, Decimal) else value)
    if text is None:
        raise SourceError(
            f"{value!r} is compared with a date or time column but is neither an ISO 8601 date"
            " or timestamp nor unix seconds"
        )
    return text


# SQLite stores a date or time as text in any ISO 8601 form or as unix seconds: every filter
# compares them as instants, not as the stored text ('2026-01-02' < '2026-01-02 00:00:00' as
# text). An index on the raw column cannot serve these comparisons: a scan, one Python call a
# row. And LIKE has no default escape character: '\' as on the other sources.
COMPARISONS = Comparisons(instant=_instant_column, instant_value=_instant_value, like_escape="\\")


def _mark(text: str, logical: str) -> date | datetime:
    """A cursor's greatest instant as the value of its column's type: a mark of the same form
    on every run, whose text sorts as the instants do (``incremental.later``)."""
    moment = datetime.fromisoformat(text)
    if logical == "timestamptz":
        return moment.replace(tzinfo=UTC)
    if logical == "date" and moment.time() == time_of_day():
        return moment.date()
    return moment


# sqlite3's refusal of TEXT bytes that are not UTF-8 (SQLite stores whatever it is given).
_NOT_UTF8 = re.compile(r"Could not decode to UTF-8 column '(.*)' with text '(.*)'\Z", re.S)


def _undecodable(exc: sqlite3.OperationalError) -> SourceError | None:
    """A clear error for TEXT that is not UTF-8 (it surfaced as an internal error with a
    traceback); None for any other error."""
    found = _NOT_UTF8.match(str(exc))
    if found is None:
        return None
    name, shown = found.groups()
    return SourceError(
        f"column {name!r} holds TEXT that is not UTF-8 ({shown!r}, undecodable bytes shown as "
        "U+FFFD): Egress reads SQLite text as UTF-8; correct the value, or read the column's "
        f"bytes in a SQL template (CAST({name} AS BLOB) is a binary column)"
    )


def _cannot_open(path: str) -> str:
    return (
        f"cannot open {path} as a SQLite database: it is missing, not a SQLite database file, "
        "or outside the files roots"
    )


class SqliteSource:
    dialect = "sqlite"

    def __init__(
        self, settings: SqliteSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._path = settings.path
        self._calls = OpenCalls()
        self._cursor_nulls: int | None = None  # counted with the last mark read

    def _connect(self) -> sqlite3.Connection:
        """A read-only connection to the checked real path (read-only never creates a file).
        A missing file, a folder, a non-database and a forbidden path all get one answer, so
        the error tells nothing about what exists outside the roots."""
        try:
            real = confine.confined(self._path, self._policy)
            # Opening a FIFO blocks in C until a writer comes, past every timeout: it held a
            # slot of the shared source pool for good. Only a regular file is opened.
            if not stat.S_ISREG(os.stat(real).st_mode):
                raise confine.PathRefused("not a regular file")
            conn = sqlite3.connect(f"{real.as_uri()}?mode=ro", uri=True)
        except (confine.PathRefused, OSError, sqlite3.Error) as exc:
            log.info("sqlite source %s: %s", self._path, exc)
            raise SourceError(_cannot_open(self._path)) from exc
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            conn.create_function(_INSTANT, 1, instant_text, deterministic=True)
        except sqlite3.Error as exc:
            conn.close()
            log.info("sqlite source %s: %s", self._path, exc)
            raise SourceError(_cannot_open(self._path)) from exc
        self._track(conn)
        return conn

    def check(self) -> None:
        self._connect().close()

    def catalog(self) -> list[TableInfo]:
        conn = self._connect()
        try:
            objects = conn.execute(
                "SELECT name, type FROM sqlite_master WHERE type IN ('table', 'view') "
                "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
            ).fetchall()
            tables = []
            unique: dict[tuple[str, str], list[list[str]]] = {}
            for name, kind in objects:
                info = conn.execute("SELECT * FROM pragma_table_info(?)", (name,)).fetchall()
                # An INTEGER PRIMARY KEY is the rowid: never NULL, whatever notnull says. Only a
                # key of that one column is: each column of a longer PRIMARY KEY may hold NULL.
                alone = sum(1 for c in info if c[5]) == 1
                columns = [
                    ColumnInfo(
                        c[1],
                        logical_type(c[2] or ""),
                        not c[3] and not (alone and c[5] and (c[2] or "").upper() == "INTEGER"),
                    )
                    for c in info
                ]
                pk = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])]
                tables.append(TableInfo(SCHEMA, name, columns, pk, kind))
                if not pk:
                    unique[(SCHEMA, name)] = _unique_keys(conn, name)
            return with_enforced_keys(tables, unique)
        except sqlite3.Error as exc:
            raise SourceError(str(exc)) from exc
        finally:
            conn.close()

    def describe(self, query: str) -> list[ColumnInfo]:
        """sqlite3 reports no result types. A TEMP view over the probe (temp objects need no
        write access) gives the declared type of each column taken straight from a table;
        computed columns have none, so a sample of their values types them."""
        probe = probe_statement(query, self.dialect)
        conn = self._connect()
        deadline = time.monotonic() + base.PROBE_TIMEOUT_S
        # A non-zero answer interrupts the statement ("interrupted"), checked every 10k steps.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            conn.execute(probe)
            conn.execute(f'CREATE TEMP VIEW "{_PROBE_VIEW}" AS {probe}')
            info = conn.execute(
                "SELECT name, type FROM pragma_table_info(?, 'temp')", (_PROBE_VIEW,)
            ).fetchall()
            types = {name: logical_type(declared) for name, declared in info if declared}
            computed = [name for name, declared in info if not declared]
            if computed:
                sample = (
                    exp.select(*[column(name) for name in computed])
                    .from_(subquery(query, self.dialect))
                    .limit(_SAMPLE_ROWS)
                    .sql(dialect=self.dialect)
                )
                rows = conn.execute(sample).fetchall()
                for i, name in enumerate(computed):
                    types[name] = _sampled_type([r[i] for r in rows])
        except sqlite3.Error as exc:
            slow = time.monotonic() > deadline
            raise QueryError(base.probe_too_slow() if slow else str(exc)) from exc
        finally:
            conn.close()
        return [ColumnInfo(name, types[name]) for name, _ in info]

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        conn = self._connect()
        try:
            row = conn.execute(mark_statement(plan, field, "sqlite", COMPARISONS)).fetchone()
        except sqlite3.Error as exc:
            raise SourceError(str(exc)) from exc
        finally:
            conn.close()
        high, self._cursor_nulls = row if row else (None, None)
        logical = plan.column_type(field)
        return _mark(high, logical) if high is not None and logical in TEMPORAL else high

    def cursor_nulls(self) -> int | None:
        return self._cursor_nulls

    def later_text(self, plan: ReadPlan, field: str, value: str, current: str) -> bool:
        params = Params()
        sql = later_statement(plan, field, value, current, "sqlite", params)
        conn = self._connect()
        try:
            row = conn.execute(sql, params.values).fetchone()
        except sqlite3.Error as exc:
            raise SourceError(str(exc)) from exc
        finally:
            conn.close()
        return row is not None and row[0] == 1

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema(plan.fields)
        conn = self._connect()
        try:
            try:
                if plan.order and plan.table is not None:  # an export job: by key, after a cursor
                    statement = _keyset_statement(conn, plan, plan.table)
                else:
                    statement = select_statement(
                        plan, "sqlite", convert=sqlite_value, rules=COMPARISONS
                    )
                cur = conn.execute(statement.sql, statement.params)
            except sqlite3.Error as exc:
                raise SourceError(str(exc)) from exc
            except OverflowError as exc:  # a filter value beyond SQLite's 64-bit integers
                raise SourceError(f"a value in the filter does not fit SQLite: {exc}") from exc
            fixes = {i: _no_blobs(f.type) for i, f in enumerate(plan.fields) if f.type != "binary"}
            try:
                for rows in bounded_rows(cur, plan.fields, batch_rows, batch_bytes):
                    yield rows_to_batch(rows, plan.fields, schema, fixes)
            except sqlite3.OperationalError as exc:
                undecodable = _undecodable(exc)
                if undecodable is None:
                    raise
                raise undecodable from exc
        finally:
            conn.close()

    def close(self) -> None:
        return None

    def interrupt(self) -> None:
        self._calls.interrupt()

    def _track(self, conn: sqlite3.Connection) -> None:
        # sqlite3's interrupt() is the one call meant for another thread, but it is lost when
        # no statement runs yet; the progress handler also stops one started after it (a
        # non-zero answer fails the statement with "interrupted"). SQL template describing
        # replaces the handler with its own deadline.
        conn.set_progress_handler(lambda: int(self._calls.interrupted), _PROGRESS_STEPS)
        try:
            self._calls.track(conn.interrupt)
        except BaseException:
            conn.close()
            raise


def _unique_keys(conn: sqlite3.Connection, table: str) -> list[list[str]]:
    """A table's UNIQUE indexes over plain columns and every row (no expression, no WHERE)."""
    keys = []
    for _seq, index, unique, _origin, partial in conn.execute(
        "SELECT * FROM pragma_index_list(?)", (table,)
    ).fetchall():
        if not unique or partial:
            continue
        columns = conn.execute(
            "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index,)
        ).fetchall()
        if columns and all(c[0] is not None for c in columns):
            keys.append([c[0] for c in columns])
    return keys


# ------------------------------------------------------------------------ export paging
#
# An export job reads the rows after the previous job's last key (``ReadPlan.order`` and
# ``after``). SQLite orders a column by how each value is stored (NULL, then numbers, then
# text by the column's collation, then BLOBs) and compares the cursor with it the same way:
# every key column is ordered and compared by one expression, with the cursor bound as that
# expression's values are, or the job fails naming the column (before 2026-12-04 a chain lost
# or repeated rows here while every job said Completed):
#
# - a date or time column by the instant it is read as (``egress_instant``, as every filter
#   compares it): its text in any ISO 8601 form, with or without an offset, or unix seconds
#   (by the column itself when it holds only text that sorts as its instants do);
# - a column without type affinity (no declared type, or BLOB) by its one storage class, the
#   cursor bound in it (integers read as text are compared as the integers they are); one
#   holding numbers and text (or BLOBs) cannot be paged;
# - a text column by the collation of the index that makes the key unique (``code TEXT
#   COLLATE NOCASE`` with a UNIQUE index on ``code COLLATE BINARY`` holds 'b' and 'B');
# - a key column holding NULL (a PRIMARY KEY other than an INTEGER PRIMARY KEY may) cannot
#   be paged: NULL compares with no cursor, and several rows may hold the same NULL key.

_PAGING = "this object cannot be exported"
# Storage classes as typeof() names them, grouped as SQLite orders them.
_CLASS_GROUPS = {"integer": "numbers", "real": "numbers", "text": "text", "blob": "BLOBs"}
_GROUP_ORDER = ("numbers", "text", "BLOBs")
# A collating sequence's name placed in SQL (those SQLite knows, and an application's own).
_COLLATION = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z", re.ASCII)
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+\Z", re.ASCII)


def _affinity(declared: str) -> str:
    """A declared type's affinity, by SQLite's rules (datatype3.html, 3.1) in their order."""
    t = declared.upper()
    if "INT" in t:
        return "integer"
    if "CHAR" in t or "CLOB" in t or "TEXT" in t:
        return "text"
    if "BLOB" in t or not t:
        return "blob"
    if "REAL" in t or "FLOA" in t or "DOUB" in t:
        return "real"
    return "numeric"


@dataclass(frozen=True)
class _Key:
    """One key column as an export job orders and compares it: ``expr`` in ORDER BY and
    in the comparison with the cursor, ``bind`` the cursor's value as ``expr`` compares."""

    expr: exp.Expr
    bind: Callable[[Any], Any]


def _as_stored(value: Any) -> Any:
    # A time of day (which sqlite3 cannot bind) as the ISO text SQLite stores it as.
    return value.isoformat() if isinstance(value, time_of_day) else value


def _keyset_statement(conn: sqlite3.Connection, plan: ReadPlan, table: TableRef) -> Statement:
    """An export job's SELECT: the plan's rows after its cursor in key order, each key column
    ordered and compared as ``_paged_keys`` says."""
    keys = _paged_keys(conn, plan, table)
    params = Params(convert=sqlite_value)
    projections = [exp.alias_(column(f.name), f.name, quoted=True) for f in plan.fields]
    query = exp.select(*projections).from_(relation(plan, "sqlite"), copy=False)
    where = conditions(replace(plan, after=None), params, COMPARISONS)
    if plan.after is not None:
        exprs = [k.expr.copy() for k in keys]
        bound = [params.bind(k.bind(v)) for k, v in zip(keys, plan.after, strict=True)]
        if len(keys) == 1:
            where.append(exp.GT(this=exprs[0], expression=bound[0]))
        else:
            where.append(
                exp.GT(this=exp.Tuple(expressions=exprs), expression=exp.Tuple(expressions=bound))
            )
    if where:
        query = query.where(exp.and_(*where), copy=False)
    query = query.order_by(*[k.expr.copy() for k in keys], copy=False)
    if plan.limit is not None:
        query = query.limit(plan.limit, copy=False)
    if plan.offset is not None:
        query = query.offset(plan.offset, copy=False)
    return Statement(query.sql(dialect="sqlite"), params.values)


def _paged_keys(conn: sqlite3.Connection, plan: ReadPlan, table: TableRef) -> list[_Key]:
    """How each key column is ordered and compared, after checking the table can be paged
    by it now (the template may be older than the table's last change)."""
    schema = table.schema or SCHEMA
    shown = table.display
    info = {
        row[1]: row
        for row in conn.execute("SELECT * FROM pragma_table_info(?, ?)", (table.name, schema))
    }
    for name in plan.order:
        if name not in info:
            raise SourceError(
                f"{_PAGING}: table {shown} has no key column {name!r} any more; list the "
                "templates again"
            )
    collations = _key_collations(conn, table.name, schema, plan.order)
    first = plan.order[0]
    rowid = (
        collations is None
        and len(plan.order) == 1
        and info[first][5] == 1
        and (info[first][2] or "").upper() == "INTEGER"
    )
    if collations is None and not rowid:
        raise SourceError(
            f"{_PAGING}: table {shown} has no PRIMARY KEY or UNIQUE index over its key "
            f"({', '.join(plan.order)}) any more, so paging by it could skip or repeat rows; "
            "list the templates again"
        )
    keys = []
    for name in plan.order:
        declared = info[name][2] or ""
        if not info[name][3] and not rowid and _holds_null(conn, table, name):
            raise SourceError(
                f"{_PAGING}: its key column {name!r} (table {shown}) holds NULL, which SQLite "
                "allows in a PRIMARY KEY column other than an INTEGER PRIMARY KEY: a NULL key "
                "compares with no cursor and is no row's alone, so jobs after it would skip "
                "rows; give those rows a key (or declare the column NOT NULL), or export the "
                "table with an extraction"
            )
        col: exp.Expr = exp.column(name, table=table.name, db=table.schema, quoted=True)
        logical = plan.column_type(name)
        if logical in TEMPORAL:
            # Text of the canonical form only: its own order is the instants' (an index serves
            # it); anything else (another form, an offset, unix seconds) as egress_instant().
            canonical = _canonical_only(conn, table, name)
            keys.append(_Key(col if canonical else _instant_column(col), _instant_value))
            continue
        bind: Callable[[Any], Any] = _as_stored
        if _affinity(declared) == "blob":
            bind = _stored_class(conn, table, name, declared)
        coll = (collations or {}).get(name)
        if coll is not None:
            if not _COLLATION.match(coll):
                raise SourceError(
                    f"{_PAGING}: its key column {name!r} (table {shown}) is unique under the "
                    f"collating sequence {coll!r}, which Egress cannot name in a query"
                )
            col = exp.Collate(this=col, expression=exp.Var(this=coll))
        keys.append(_Key(col, bind))
    return keys


def _key_collations(
    conn: sqlite3.Connection, name: str, schema: str, key: list[str]
) -> dict[str, str] | None:
    """The collating sequence of each key column in a UNIQUE index over exactly the key's
    columns (its PRIMARY KEY's first): the order in which the key is unique. None: there is no
    such index (an INTEGER PRIMARY KEY is the rowid, which has none)."""
    found = []
    for _seq, index, unique, origin, partial in conn.execute(
        "SELECT * FROM pragma_index_list(?, ?)", (name, schema)
    ).fetchall():
        if not unique or partial:
            continue
        columns = conn.execute(
            "SELECT name, coll FROM pragma_index_xinfo(?, ?) WHERE key = 1 ORDER BY seqno",
            (index, schema),
        ).fetchall()
        names = [c[0] for c in columns]
        if None not in names and sorted(names) == sorted(key):
            found.append((origin != "pk", index, {c[0]: c[1] for c in columns}))
    if not found:
        return None
    return min(found, key=lambda f: (f[0], f[1]))[2]


_DAY_GLOB = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
_SECONDS_GLOB = f"{_DAY_GLOB} [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
# ``_CANONICAL``'s forms, the most common first: to the second, to the microsecond, the day.
_CANONICAL_GLOBS = (_SECONDS_GLOB, f"{_SECONDS_GLOB}.[0-9][0-9][0-9][0-9][0-9][0-9]", _DAY_GLOB)


def _canonical_only(conn: sqlite3.Connection, table: TableRef, name: str) -> bool:
    """Whether a date or time column holds only text of ``_CANONICAL``'s forms (as Python's
    sqlite3 writes dates and times). Such text sorts as the instants it is read as, and
    compares with the cursor's instant text (``instant_text``: the same, padded) as those
    instants do, so the job orders by the column itself. One look through the column, in C:
    ordering by egress_instant() calls Python for every row of the table (3-4 times slower)."""
    col = column(name)
    canonical = exp.or_(
        *[exp.Glob(this=col.copy(), expression=exp.Literal.string(g)) for g in _CANONICAL_GLOBS]
    )
    typed = exp.EQ(
        this=exp.Anonymous(this="typeof", expressions=[col.copy()]),
        expression=exp.Literal.string("text"),
    )
    query = (
        exp.select(exp.Literal.number(1))
        .from_(table_sql(table))
        .where(exp.Not(this=exp.Is(this=col.copy(), expression=exp.Null())))
        .where(exp.Not(this=exp.Paren(this=exp.and_(typed, exp.Paren(this=canonical)))))
        .limit(1)
    )
    return conn.execute(query.sql(dialect="sqlite")).fetchone() is None


def _holds_null(conn: sqlite3.Connection, table: TableRef, name: str) -> bool:
    query = (
        exp.select(exp.Literal.number(1))
        .from_(table_sql(table))
        .where(exp.Is(this=column(name), expression=exp.Null()))
        .limit(1)
    )
    return conn.execute(query.sql(dialect="sqlite")).fetchone() is not None


def _stored_class(
    conn: sqlite3.Connection, table: TableRef, name: str, declared: str
) -> Callable[[Any], Any]:
    """The cursor's value of a key column without type affinity as the column stores its
    values: SQLite converts nothing it is compared with, and sorts every number before any
    text and every text before any BLOB, so a column holding more than one of these cannot be
    paged by a cursor read as text (or bytes). The values of a column typed string are read as
    text: an INTEGER 100000 read as '100000' is compared as 100000 again."""
    query = (
        exp.select(exp.Anonymous(this="typeof", expressions=[column(name)]))
        .distinct()
        .from_(table_sql(table))
        .where(exp.Not(this=exp.Is(this=column(name), expression=exp.Null())))
    )
    held = {_CLASS_GROUPS.get(row[0], row[0]) for row in conn.execute(query.sql("sqlite"))}
    if len(held) > 1:
        kinds = " and ".join(g for g in _GROUP_ORDER if g in held)
        what = "has no declared type" if not declared else f"is declared {declared}"
        raise SourceError(
            f"{_PAGING}: its key column {name!r} (table {table.display}) {what} and holds both "
            f"{kinds}, which SQLite sorts apart (every number before any text, every text "
            "before any BLOB) while the cursor keeps one of them as text: jobs after the first "
            "would skip or repeat rows; declare the column's type (or store one kind of value "
            "in it), or export the table with an extraction"
        )
    (group,) = held or {"text"}

    def bind(value: Any) -> Any:
        if group == "BLOBs":
            return value
        text = value.decode() if isinstance(value, bytes) else str(value)
        if group == "text":
            return text
        return int(text) if _INTEGER_TEXT.match(text) else float(text)

    return bind
