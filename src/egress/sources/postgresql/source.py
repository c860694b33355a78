"""The PostgreSQL source: connections (checked addresses, limits, cancel), catalog, probe,
snapshot, and reads over ADBC or COPY."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from typing import Any, BinaryIO
from urllib.parse import quote, urlencode

import adbc_driver_postgresql.dbapi as adbc_pg
import psycopg
import pyarrow as pa
from adbc_driver_postgresql import StatementOptions
from psycopg import sql
from sqlglot import exp

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.incremental import beyond_mark_problem
from egress.domain.plan import ReadPlan
from egress.query.custom import probe_statement
from egress.query.select import (
    ColumnSql,
    Params,
    Quote,
    bounds_statement,
    later_statement,
    plain_column,
    quoted_select,
    table_sql,
)
from egress.sources import base
from egress.sources.arrow_types import arrow_schema, conform
from egress.sources.base import (
    NO_PARTITION_KEY,
    ConnectFailed,
    FilePart,
    OpenCalls,
    ProgressFn,
    Rendering,
    SnapshotMark,
    SourceError,
)
from egress.sources.marks import mark_statement
from egress.sources.policy import (
    SourcePolicy,
    connect_timeout_s,
)
from egress.sources.postgresql.batches import decoded, infinities, read_error
from egress.sources.postgresql.catalog import (
    ACCESS_SQL,
    CATALOG_SQL,
    PK_SQL,
    UNIQUE_SQL,
    describe_query,
    tables_from,
)
from egress.sources.postgresql.columns import (
    arrow_path_sql,
    can_render_csv,
    raw_text_sql,
)
from egress.sources.postgresql.connect import (
    SUPERUSER_WARNING,
    WRITER_WARNING,
    connect_error_class,
    first_line,
)
from egress.sources.postgresql.copy_native import FLOAT_TYPES, floats_in_c
from egress.sources.postgresql.copy_out import copy_rendered, refuse_sql_ascii
from egress.sources.postgresql.copy_parts import copy_parts
from egress.sources.postgresql.copy_split import OpenPart, can_copy_split, copy_split, split_field
from egress.sources.postgresql.jsonl_copy import can_render_jsonl
from egress.sources.postgresql.keyset import copy_slice, exact_number
from egress.sources.postgresql.quoting import quoter
from egress.sources.postgresql.sessions import IdleSession
from egress.sources.postgresql.settings import (
    CLIENT_ENCODING,
    SOURCE_ENCODINGS,
    SQL_ASCII,
    PostgresSettings,
    session_settings,
    statement_limit,
)
from egress.sources.postgresql.snapshot import (
    BEGIN_SNAPSHOT,
    NO_GATHER,
    SNAPSHOT_PRE_SQL,
    SNAPSHOT_SQL,
    join_snapshot,
    one_row,
    take_mark,
)
from egress.sources.postgresql.tracking import track_adbc, track_psycopg
from egress.sources.session_cache import SessionCache, session_key

# ADBC ends a batch once it holds this many bytes (its own default), or EGRESS_BATCH_BYTES when
# smaller, as it is by default (larger ADBC batches saved no time in the bench).
ADBC_BATCH_HINT_BYTES = 16 << 20
BATCH_HINT_OPTION = StatementOptions.BATCH_SIZE_HINT_BYTES.value
# ADBC's own table of PostgreSQL's built-in types instead of reading pg_type and every
# pg_attribute row at each connect (~100 ms of a session's start, a fixed cost of every export
# job): every column Egress reads is cast to a built-in type (arrow_path_sql).
TYPE_RESOLVER_OPTIONS = {"adbc.postgresql.type_resolver_mode": "builtin"}


# server_version_num from which a float's text (extra_float_digits = 1) is its shortest.
SHORTEST_FLOATS_SINCE = 120000


class PostgresSource:
    dialect = "postgres"

    def __init__(
        self, settings: PostgresSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._s = settings
        self._password = secrets.get("password")
        self._calls = OpenCalls()
        # An incremental run's snapshot transaction, between the mark and the rows.
        self._held: psycopg.Connection[Any] | Any | None = None
        self._cursor_nulls: int | None = None  # counted with the last mark read
        self._sql_ascii: bool | None = None  # known from the first session's server_encoding
        # PostgreSQL 12 and later write a float's shortest text (extra_float_digits = 1), which
        # the COPY path's C loop lays out as Egress writes floats; older servers do not.
        self._shortest_floats = False
        self._idle = IdleSession(self._psycopg, keep=policy.read_timeout_s is None)

    def _where(self) -> str:
        return f"postgresql {self._s.host}:{self._s.port}/{self._s.database}"

    def _failed(self, kind: str, detail: object) -> ConnectFailed:
        return base.connect_failed(kind, self._where(), str(detail), self._password)

    def _target(self) -> tuple[list[str], dict[str, Any]]:
        """The checked addresses (libpq ``hostaddr``: libpq connects to them and resolves
        nothing; ``host`` stays the name, for TLS verification) and the connection limits."""
        s = self._s
        addresses = base.server_addresses_or_fail(
            s.host, s.port, s.database, self._policy, self._failed
        )
        timeout = connect_timeout_s(self._s.connect_timeout, self._policy)
        limits = {
            "sslmode": self._s.sslmode,
            # libpq counts whole seconds (psycopg makes anything under 2 into 2).
            "connect_timeout": str(max(1, math.ceil(timeout))),
            # Data the server never acknowledges fails the connection instead of waiting for
            # the kernel's retransmission limit (about 15 minutes).
            "tcp_user_timeout": str(int(timeout * 1000)),
        }
        return addresses, limits

    def _psycopg(self) -> psycopg.Connection[Any]:
        addresses, limits = self._target()
        try:
            conn = psycopg.connect(
                host=",".join([self._s.host] * len(addresses)),
                hostaddr=",".join(addresses),
                port=",".join([str(self._s.port)] * len(addresses)),
                dbname=self._s.database,
                user=self._s.user,
                password=self._password,
                autocommit=True,
                client_encoding=CLIENT_ENCODING,
                # Never prepared: a reused session's DISCARD ALL drops the server's statements
                # that psycopg's cache, which does not always notice, would go on naming.
                prepare_threshold=None,
                **limits,
            )
        except psycopg.Error as exc:
            raise self._failed(connect_error_class(exc), exc) from exc
        self._prepare(conn)
        return conn

    def _prepare(self, conn: psycopg.Connection[Any], reset: tuple[str, ...] = ()) -> None:
        """A new session, or a reused one (``reset``: the statements that reset it first),
        made this source's: tracked (so that ``interrupt`` stops it) and set up."""
        track_psycopg(self._calls, conn, self._policy.connect_timeout_s)
        # One round trip for all of them (a tiny run's sessions are most of its work).
        conn.execute("; ".join((*reset, *session_settings(self._policy.read_timeout_s))))
        self._sql_ascii = conn.info.parameter_status("server_encoding") == SQL_ASCII
        self._shortest_floats = conn.info.server_version >= SHORTEST_FLOATS_SINCE
        if self._sql_ascii and self._s.sourceEncoding != "utf-8":
            # The server passes SQL_ASCII bytes unchanged: labelled with their real encoding,
            # psycopg decodes names and values as what they are.
            pg_name = SOURCE_ENCODINGS[self._s.sourceEncoding]
            conn.execute(sql.SQL("SET client_encoding TO {}").format(sql.Literal(pg_name)))

    def reuse_sessions(self, cache: SessionCache, owner: str) -> None:
        key = session_key(owner, self._s.model_dump(mode="json"), self._password, self._policy)
        self._idle.lend(cache, key, self._prepare)

    def drop_sessions(self) -> None:
        self._idle.drop()

    def _is_sql_ascii(self) -> bool:
        """Whether the database is SQL_ASCII: its text is bytes this source decodes itself."""
        if self._sql_ascii is None:
            with self._idle.use():
                pass
        return bool(self._sql_ascii)

    def _adbc(self, autocommit: bool = False) -> Any:
        addresses, limits = self._target()
        auth = quote(self._s.user, safe="")
        if self._password:
            auth += ":" + quote(self._password, safe="")
        hosts = ",".join(f"{quote(self._s.host, safe='')}:{self._s.port}" for _ in addresses)
        # A SQL_ASCII database in another encoding: labelled so, since the server would refuse
        # its non-UTF-8 bytes (ADBC reads every column name when it connects).
        legacy = self._sql_ascii and self._s.sourceEncoding != "utf-8"
        encoding = SOURCE_ENCODINGS[self._s.sourceEncoding] if legacy else CLIENT_ENCODING
        params = urlencode({"hostaddr": ",".join(addresses), "client_encoding": encoding, **limits})
        uri = f"postgresql://{auth}@{hosts}/{quote(self._s.database, safe='')}?{params}"
        try:
            return adbc_pg.connect(uri, db_kwargs=TYPE_RESOLVER_OPTIONS, autocommit=autocommit)
        except Exception as exc:  # the driver's errors share no base class with psycopg's
            raise self._failed(connect_error_class(exc), exc) from exc

    def check(self) -> None:
        with self._idle.use() as conn:
            conn.execute("SELECT 1")

    def check_access(self) -> list[str]:
        try:
            with self._idle.use() as conn:
                row = conn.execute(ACCESS_SQL).fetchone()
        except psycopg.Error as exc:
            raise SourceError(first_line(exc)) from exc
        superuser, writer = row if row else (False, False)
        if superuser:
            return [SUPERUSER_WARNING]
        return [WRITER_WARNING] if writer else []

    def catalog(self) -> list[TableInfo]:
        try:
            with self._idle.use() as conn:
                rows = conn.execute(CATALOG_SQL).fetchall()
                pk_rows = conn.execute(PK_SQL).fetchall()
                unique_rows = conn.execute(UNIQUE_SQL).fetchall()
        except (psycopg.Error, UnicodeDecodeError) as exc:  # names in a SQL_ASCII database
            raise SourceError(first_line(exc)) from exc
        return tables_from(rows, pk_rows, unique_rows)

    def describe(self, query: str) -> list[ColumnInfo]:
        limit_s = base.probe_limit_s(self._policy.read_timeout_s)
        with self._idle.use() as conn:
            columns = describe_query(conn, probe_statement(query, self.dialect), limit_s)
            # The session may serve the run's next calls.
            conn.execute(statement_limit(self._policy.read_timeout_s))
        return columns

    def _quoter(self, conn: psycopg.Connection[Any]) -> Quote:
        legacy = self._is_sql_ascii() and self._s.sourceEncoding != "utf-8"
        return quoter(conn, self._s.sourceEncoding if legacy else None)

    def _select(self, conn: psycopg.Connection[Any], plan: ReadPlan, column_sql: ColumnSql) -> str:
        return quoted_select(plan, self.dialect, column_sql, self._quoter(conn))

    def estimate_rows(self, plan: ReadPlan) -> int | None:
        """The planner's estimate for the plan's SELECT (EXPLAIN: nothing is read). Its rows do
        not depend on how columns are rendered: the plain columns cost least to build and plan
        (the rendering's expressions took tens of ms of a run's start)."""
        try:
            with self._idle.use() as conn:
                row = conn.execute(
                    f"EXPLAIN (FORMAT JSON) {self._select(conn, plan, plain_column)}"
                )
                explained = row.fetchone()
        except (psycopg.Error, SourceError):
            return None
        doc = explained[0] if explained else None
        if isinstance(doc, str):
            doc = json.loads(doc)
        try:
            return int(doc[0]["Plan"]["Plan Rows"])  # type: ignore[index]
        except (TypeError, KeyError, IndexError, ValueError):
            return None

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        try:
            with self._idle.use() as conn:
                row = conn.execute(_mark_sql(plan, field)).fetchone()
        except (psycopg.Error, UnicodeDecodeError) as exc:
            raise SourceError(self._beyond_mark(plan, field) or first_line(exc)) from exc
        high, self._cursor_nulls = row if row else (None, None)
        return high

    def _beyond_mark(self, plan: ReadPlan, field: str) -> str | None:
        """Why the cursor's maximum could not be read as a mark, when it is a date or time
        outside Python's years 1-9999 (``infinity``, a BC date, year 10000): the driver's own
        text named neither the column nor a way out, and every later run failed alike."""
        if plan.column_type(field) not in ("date", "timestamp", "timestamptz"):
            return None
        try:
            with self._idle.use() as conn:
                row = conn.execute(_mark_sql(plan, field, as_text=True)).fetchone()
        except psycopg.Error:
            return None
        high = row[0] if row else None
        return None if high is None else beyond_mark_problem(field, high)

    def cursor_nulls(self) -> int | None:
        return self._cursor_nulls

    def later_text(self, plan: ReadPlan, field: str, value: str, current: str) -> bool:
        try:
            with self._idle.use() as conn:
                params = Params(quote=self._quoter(conn))
                sql = later_statement(plan, field, value, current, "postgres", params)
                row = conn.execute(sql).fetchone()
        except (psycopg.Error, UnicodeDecodeError) as exc:
            raise SourceError(first_line(exc)) from exc
        return row is not None and row[0] == 1

    def begin_snapshot(self, plan: ReadPlan, field: str, *, by_copy: bool) -> SnapshotMark | None:
        if plan.query is not None:
            return None
        assert plan.table is not None  # a table, not a SQL template (checked above)
        rel = table_sql(plan.table).sql("postgres")
        pre = SNAPSHOT_PRE_SQL.format(rel=exp.Literal.string(rel).sql("postgres"))
        sql = SNAPSHOT_SQL.format(mark=_mark_sql(plan, field))
        conn: Any = self._idle.take() if by_copy else self._adbc_session()
        try:
            mark = take_mark(conn, pre, sql)
        except SourceError:
            conn.close()
            raise
        except Exception as exc:  # psycopg's or ADBC's error: the driver's message
            conn.close()
            raise SourceError(self._beyond_mark(plan, field) or first_line(exc)) from exc
        if mark is None:
            conn.close()
            return None
        self._held = conn
        self._cursor_nulls = mark.nulls
        return mark

    def copy_keyset(
        self,
        plan: ReadPlan,
        out: BinaryIO,
        on_progress: ProgressFn,
        rendering: Rendering = Rendering.CSV,
    ) -> tuple[int, list[Any] | None, bool]:
        """An export job's slice (``limit`` rows after ``after`` in key order) in one
        snapshot, rendered as ``copy_rows`` does: its row count, its last key when it is full
        (None: fewer rows remained), and whether any row follows (``keyset.py``)."""
        with self._idle.use() as conn:
            # Known once the session is set up: no session taken for the question alone.
            refuse_sql_ascii(rendering, self._is_sql_ascii())
            try:
                found = copy_slice(
                    conn,
                    plan,
                    partial(self._select, conn),
                    lambda: copy_rendered(
                        partial(self._select, conn, plan), plan, conn, out, on_progress, rendering
                    ),
                    rendering,
                )
                # The snapshot's read-only transaction: ended, the session serves on.
                conn.execute("ROLLBACK")
            except psycopg.Error as exc:
                raise read_error(exc) from exc
        return found

    def _adbc_session(self) -> Any:
        """An ADBC connection that commits nothing itself (the snapshot transaction is
        begun explicitly), with the session settings applied."""
        conn = self._adbc(autocommit=True)
        cur = conn.cursor()
        track_adbc(self._calls, cur)
        for stmt in session_settings(self._policy.read_timeout_s):
            cur.execute(stmt)
        return conn

    def _take_held(self) -> Any:
        conn, self._held = self._held, None
        return conn

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        with self._idle.use() as pconn:
            query = self._select(pconn, plan, self._column_sql())
        held = self._take_held()
        yield from self._stream(
            held if held is not None else self._adbc_session(), plan, query, batch_bytes
        )

    def _column_sql(self) -> ColumnSql:
        return raw_text_sql if self._sql_ascii is True else arrow_path_sql

    def _stream(
        self, conn: Any, plan: ReadPlan, query: str, batch_bytes: int | None
    ) -> Iterator[pa.RecordBatch]:
        """The query's batches on ``conn`` (an ADBC session, perhaps in its snapshot
        transaction), which is closed at the end."""
        schema = arrow_schema(plan.fields)
        raw = self._sql_ascii is True
        try:
            with conn.cursor() as cur:
                track_adbc(self._calls, cur)
                hint = min(batch_bytes or ADBC_BATCH_HINT_BYTES, ADBC_BATCH_HINT_BYTES)
                cur.adbc_statement.set_options(**{BATCH_HINT_OPTION: str(hint)})
                try:
                    cur.execute(query)
                    reader = cur.fetch_record_batch()
                    for batch in reader:
                        if raw:
                            batch = decoded(batch, plan.fields, self._s.sourceEncoding)
                        yield infinities(conform(batch, schema))
                except (SourceError, ValueError):
                    raise
                except Exception as exc:
                    raise read_error(exc) from exc
        finally:
            conn.close()

    def partition_blocker(self, plan: ReadPlan) -> str | None:
        if plan.partition_key is None:
            return NO_PARTITION_KEY
        return None

    def read_partitions(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> list[Iterator[pa.RecordBatch]]:
        """One session per key range, all in one snapshot: the first session's (an
        incremental run's held one, or a new one) exported to the others."""
        held = self._take_held()
        sessions = [held if held is not None else self._adbc_session()]
        try:
            if held is None:
                one_row(sessions[0], BEGIN_SNAPSHOT)
            with self._idle.use() as pconn:
                quote = self._quoter(pconn)
                key = plan.partition_key
                assert key is not None
                bounds = bounds_statement(plan, key, self.dialect, quote)
                one_row(sessions[0], NO_GATHER)
                exported, low, high = one_row(
                    sessions[0], f"SELECT pg_export_snapshot(), b.* FROM ({bounds}) AS b"
                )
                ranges = [None] if low is None else plan.key_ranges(low, high)
                parts = [replace(plan, key_range=r, parallelism=1) for r in ranges]
                for _ in parts[1:]:
                    sessions.append(self._adbc_session())
                    join_snapshot(sessions[-1], quote(exported))
                queries = [self._select(pconn, part, self._column_sql()) for part in parts]
        except BaseException as exc:
            for conn in sessions:
                conn.close()
            if isinstance(exc, psycopg.Error | adbc_pg.Error):
                raise read_error(exc) from exc
            raise
        return [
            self._stream(conn, part, query, batch_bytes)
            for conn, part, query in zip(sessions, parts, queries, strict=True)
        ]

    def can_copy(self, plan: ReadPlan, rendering: Rendering) -> bool:
        if rendering is Rendering.POSTGRES_CSV:
            return True  # PostgreSQL's own text of every type (SQL_ASCII: refused on copying)
        renders = self._renders_jsonl if rendering is Rendering.JSONL else self._renders_csv
        # SQL_ASCII text is decoded (strictly, naming the column) on the Arrow path only.
        return not self._is_sql_ascii() and all(renders(f.type) for f in plan.fields)

    def _relays_floats(self) -> bool:
        """Whether the C loop re-lays out floats' shortest text (``_is_sql_ascii`` has opened a
        session: ``_shortest_floats`` is known)."""
        return floats_in_c() and self._shortest_floats

    def _renders_csv(self, logical: str) -> bool:
        """Egress's CSV by ``COPY``: floats too where the C loop re-lays them out."""
        return can_render_csv(logical, self._shortest_floats) or (
            logical in FLOAT_TYPES and self._relays_floats()
        )

    def _renders_jsonl(self, logical: str) -> bool:
        """Egress's JSONL by ``COPY``: floats too where the C loop re-lays them out."""
        return can_render_jsonl(logical, self._shortest_floats) or (
            logical in FLOAT_TYPES and self._relays_floats()
        )

    def copy_rows(
        self,
        plan: ReadPlan,
        out: BinaryIO,
        on_progress: ProgressFn,
        rendering: Rendering = Rendering.CSV,
    ) -> int:
        """The plan's rows through one ``COPY``: Egress's CSV with a header, its JSONL
        (rendered by the server, ``jsonl_copy.py``), or PostgreSQL's own CSV (csvDialect
        "postgres"), the plain ``COPY`` that costs the server least (no expression per value:
        ``to_char`` alone costs more than the whole copy)."""
        refuse_sql_ascii(rendering, self._is_sql_ascii())
        held = self._take_held()
        with held if held is not None else self._idle.use() as conn:
            try:
                select = partial(self._select, conn, plan)
                return copy_rendered(select, plan, conn, out, on_progress, rendering).rows
            except psycopg.Error as exc:
                raise read_error(exc) from exc

    def can_copy_csv_split(self, plan: ReadPlan, split_by: str) -> bool:
        return self.can_copy(plan, Rendering.CSV) and can_copy_split(split_field(plan, split_by))

    def copy_csv_split(
        self,
        plan: ReadPlan,
        split_by: str,
        output: list[str],
        open_part: OpenPart,
        on_progress: ProgressFn,
    ) -> dict[str | None, int]:
        """A split run's rows as Egress's CSV through one COPY (``copy_split.py``); the rows
        of each value."""
        held = self._take_held()
        with held if held is not None else self._idle.use() as conn:
            try:
                select = partial(self._select, conn, plan)
                return copy_split(conn, select, plan, split_by, output, open_part, on_progress)
            except psycopg.Error as exc:
                raise read_error(exc) from exc

    def copy_partitions(self, plan: ReadPlan, rendering: Rendering) -> list[FilePart]:
        """``copy_rows`` in parts, one per key range (``copy_parts.py``)."""
        refuse_sql_ascii(rendering, self._is_sql_ascii())
        first = self._take_held() or self._idle.take()
        return copy_parts(first, self._psycopg, plan, self._select, self._quoter, rendering)

    def close(self) -> None:
        held = self._take_held()
        if held is not None:  # the run ended before reading its rows: end the transaction
            held.close()
        self._calls.forget()  # its idle session may serve another run now
        self._idle.close()

    def interrupt(self) -> None:
        self._calls.interrupt()


def _mark_sql(plan: ReadPlan, field: str, *, as_text: bool = False) -> str:
    """The cursor's maximum, read exactly (``keyset.exact_number``), and its NULL records. A
    time of day as its text: ``24:00:00``, PostgreSQL's last, is no Python time (psycopg
    failed every incremental run past it), and a time mark is kept as its text anyway
    (two-digit hours: text order is time order). ``as_text``: any maximum as its text."""
    logical = plan.column_type(field)

    def exact(maximum: exp.Expr) -> exp.Expr:
        if as_text or logical == "time":
            return exp.cast(maximum, "TEXT")
        return exact_number(maximum, logical)

    return mark_statement(plan, field, "postgres", exact=exact)
