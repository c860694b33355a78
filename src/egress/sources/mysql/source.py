"""The MySQL source: connections (checked addresses, TLS, limits, cancel), catalog, probe
and streamed reads."""

from __future__ import annotations

import os
import socket
import ssl
import stat
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pymysql
import pymysql.cursors

from egress.domain.catalog import ColumnInfo, TableInfo, group_unique_keys, with_enforced_keys
from egress.domain.export import unpageable_key_reason
from egress.domain.incremental import ServerClock
from egress.domain.options import naive_utc
from egress.domain.plan import ReadPlan
from egress.query.custom import probe_statement
from egress.query.select import Params, bounds_statement, later_statement, select_statement
from egress.sources import base, confine
from egress.sources.arrow_types import arrow_schema
from egress.sources.base import (
    NO_PARTITION_KEY,
    ConnectFailed,
    OpenCalls,
    QueryError,
    SocketRef,
    SourceError,
)
from egress.sources.mysql import raw
from egress.sources.mysql.catalog import (
    CATALOG_SQL,
    JSON_CHECKS_SQL,
    KEY_TYPES_SQL,
    PK_SQL,
    SYSTEM_SCHEMAS,
    UNIQUE_SQL,
    WRITES,
)
from egress.sources.mysql.columns import (
    column_fixes,
    column_sql,
    logical_type,
    max_sql,
    native_type,
    result_column,
)
from egress.sources.mysql.connect import (
    BAD_SSL_CA,
    EXECUTION_TIMEOUT,
    GARBLED,
    MAX_SSL_CA_BYTES,
    SERVER_LIMIT_GRACE_S,
    STATEMENT_TIMEOUT,
    SUPERUSER_WARNING,
    WRITER_WARNING,
    clean_error,
    connect_error_class,
    limit_statements,
)
from egress.sources.mysql.settings import MysqlSettings
from egress.sources.mysql.transactions import (
    NO_RELOAD,
    PROCESS_WARNING,
    privileges,
    server_clock,
)
from egress.sources.policy import SourcePolicy, connect_timeout_s
from egress.sources.rows import bounded_rows, rows_to_batch

# Why a parallel read runs in one session (issue 19) without libmysqlclient's reads.
NO_CLIENT_LIBRARY = "libmysqlclient (mysql-connector-python) is not installed"
SSL_CA_READS = (
    "a connection with ssl_ca is read through PyMySQL (its host name check needs it), whose"
    " per-value decoding sessions in parallel would not outrun"
)


class MysqlSource:
    dialect = "mysql"

    def __init__(
        self, settings: MysqlSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._s = settings
        self._password = secrets.get("password", "")
        self._calls = OpenCalls()
        self._cursor_nulls: int | None = None  # counted with the last mark read

    def _failed(self, kind: str, detail: object) -> ConnectFailed:
        where = f"mysql {self._s.host}:{self._s.port}/{self._s.database}"
        return base.connect_failed(kind, where, str(detail), self._password)

    def _ssl(self) -> dict[str, Any] | None:
        if not (self._s.ssl or self._s.ssl_ca):
            return None
        if not self._s.ssl_ca:
            return {"check_hostname": False}
        # Checked here since PyMySQL raises its errors unwrapped; one message whether the file
        # is missing or not a CA, so the answer tells nothing about the server's files. Only a
        # small regular file is read (not /dev/zero, not a FIFO that never ends).
        # It is a path a request named, so it is confined like a sqlite path (checked again
        # here: a symlink may have been swapped in since it was saved).
        try:
            real = str(confine.confined(confine.checked_spelling(self._s.ssl_ca), self._policy))
            info = os.stat(real)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SSL_CA_BYTES:
                raise SourceError(BAD_SSL_CA)
            ssl.create_default_context(cafile=real)
        except (OSError, ssl.SSLError, ValueError) as exc:  # PathRefused is a ValueError
            raise SourceError(BAD_SSL_CA) from exc
        return {"ca": real}

    def _socket(self, timeout: float) -> socket.socket:
        """A TCP connection to a checked address (never the name again, so a DNS answer that
        changed since the check cannot slip past); PyMySQL keeps the name for TLS."""
        s = self._s
        addresses = base.server_addresses_or_fail(
            s.host, s.port, s.database, self._policy, self._failed
        )
        errors: list[OSError] = []
        for address in addresses:
            try:
                sock = socket.create_connection((address, self._s.port), timeout)
            except OSError as exc:
                errors.append(exc)
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            return sock
        kind = base.TIMED_OUT if all(isinstance(e, TimeoutError) for e in errors) else None
        raise self._failed(kind or base.COULD_NOT_CONNECT, "; ".join(map(str, errors)))

    def _connect(
        self, unbuffered: bool = False, tracked: bool = True
    ) -> pymysql.connections.Connection[Any]:
        timeout = connect_timeout_s(self._s.connect_timeout, self._policy)
        conn = pymysql.connect(
            host=self._s.host,
            port=self._s.port,
            user=self._s.user,
            password=self._password,
            database=self._s.database,
            charset="utf8mb4",
            connect_timeout=timeout,
            # The handshake reads and writes under the connect limit: a peer that accepts and
            # never speaks must not hold the caller (PyMySQL's default waits forever).
            read_timeout=timeout,
            write_timeout=timeout,
            ssl=self._ssl(),
            cursorclass=(pymysql.cursors.SSCursor if unbuffered else pymysql.cursors.Cursor),
            init_command="SET time_zone = '+00:00'",
            defer_connect=True,
        )
        try:
            conn.connect(self._socket(timeout))
        except (pymysql.Error, *GARBLED, OSError) as exc:
            raise self._failed(connect_error_class(exc), exc) from exc
        # Then: interactive calls wait for the server at most their read timeout; runs wait
        # without a socket limit (a big sort's first row may take long; the stall limit
        # covers a source that stops). PyMySQL has no public setter for it.
        read_timeout = self._policy.read_timeout_s
        conn._read_timeout = None if read_timeout is None else read_timeout + SERVER_LIMIT_GRACE_S
        try:
            with conn.cursor() as cur:
                if read_timeout is not None:
                    limit_statements(cur, read_timeout)
                # Egress only reads: a SQL template calling a function that writes fails.
                cur.execute("SET SESSION TRANSACTION READ ONLY")
        except pymysql.Error as exc:
            conn.close()
            raise SourceError(clean_error(exc)) from exc
        if tracked:
            self._track(conn)
        return conn

    def check(self) -> None:
        with self._connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1")

    def check_access(self) -> list[str]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                granted = privileges(cur)
                sees_transactions = server_clock(cur) is not None
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        if "SUPER" in granted:
            warnings = [SUPERUSER_WARNING]
        else:
            warnings = [WRITER_WARNING] if granted & WRITES else []
        return warnings if sees_transactions else [*warnings, PROCESS_WARNING]

    def catalog(self) -> list[TableInfo]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(CATALOG_SQL, (self._s.database,))
                rows = cur.fetchall()
                cur.execute(PK_SQL, (self._s.database,))
                pk_rows = cur.fetchall()
                cur.execute(UNIQUE_SQL, (self._s.database,))
                unique_rows = list(cur.fetchall())
                try:
                    cur.execute(JSON_CHECKS_SQL, (self._s.database,))
                    json_columns = set(cur.fetchall())
                except pymysql.err.OperationalError:  # MySQL: JSON is its own DATA_TYPE
                    json_columns = set()
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        keys: dict[str, list[str]] = defaultdict(list)
        for table, column in pk_rows:
            keys[table].append(column)
        tables: dict[str, TableInfo] = {}
        for schema, table, kind, col, dtype, ctype, prec, scale, nullable, _key in rows:
            if schema in SYSTEM_SCHEMAS:
                continue
            info = tables.get(table)
            if info is None:
                info = TableInfo(
                    schema=schema,
                    name=table,
                    columns=[],
                    primary_key=keys.get(table, []),
                    kind="view" if kind == "VIEW" else "table",
                )
                tables[table] = info
            logical = logical_type(dtype, ctype, prec, scale, self._s.tinyint1AsBoolean)
            if (table, col) in json_columns and logical == "string":
                logical = "json"
            info.columns.append(ColumnInfo(col, logical, nullable == "YES", native_type(dtype)))
        return with_enforced_keys(list(tables.values()), group_unique_keys(unique_rows))

    def describe(self, query: str) -> list[ColumnInfo]:
        limit_s = base.probe_limit_s(self._policy.read_timeout_s)
        with self._connect() as conn, conn.cursor() as cur:
            limit_statements(cur, limit_s)
            try:
                cur.execute(probe_statement(query, self.dialect))
            except pymysql.err.OperationalError as exc:
                slow = exc.args[0] in (STATEMENT_TIMEOUT, EXECUTION_TIMEOUT)
                raise QueryError(
                    base.probe_too_slow(limit_s) if slow else clean_error(exc)
                ) from exc
            except pymysql.Error as exc:
                raise QueryError(clean_error(exc)) from exc
            # The description lacks the unsigned flag and the character set; the field
            # descriptors of the result carry both.
            return [result_column(f, self._s.tinyint1AsBoolean) for f in cur._result.fields]

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        return self._max(plan, field, with_clock=False)[0]

    def later_text(self, plan: ReadPlan, field: str, value: str, current: str) -> bool:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                params = Params(quote=conn.escape)
                cur.execute(later_statement(plan, field, value, current, "mysql", params))
                row = cur.fetchone()
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        return row is not None and row[0] == 1

    def max_value_and_clock(self, plan: ReadPlan, field: str) -> tuple[Any, ServerClock | None]:
        return self._max(plan, field, with_clock=True)

    def _max(self, plan: ReadPlan, field: str, with_clock: bool) -> tuple[Any, ServerClock | None]:
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(max_sql(plan, field))
                row = cur.fetchone()
                # After the maximum: every id or NOW() taken later lies above it.
                clock = server_clock(cur) if with_clock else None
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        high, nulls = row if row else (None, None)
        self._cursor_nulls = None if nulls is None else int(nulls)
        return high, clock

    def cursor_nulls(self) -> int | None:
        return self._cursor_nulls

    def estimate_rows(self, plan: ReadPlan) -> int | None:
        """The optimizer's estimate (EXPLAIN: nothing is read): the first table's rows, times
        the share its conditions keep where the server reports one (``filtered``)."""
        try:
            with self._connect() as conn, conn.cursor() as cur:
                query = select_statement(plan, self.dialect, convert=naive_utc, quote=conn.escape)
                cur.execute(f"EXPLAIN {query.sql}")
                names = [d[0].lower() for d in cur.description or ()]
                row = cur.fetchone()
        except (pymysql.Error, SourceError):
            return None
        found = dict(zip(names, row or (), strict=False))
        if found.get("rows") is None:
            return None
        share = float(found["filtered"]) / 100 if found.get("filtered") is not None else 1.0
        return round(float(found["rows"]) * share)

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        self._check_pageable(plan)
        if not self._reads_raw():
            yield from self._stream(self._connect(unbuffered=True), plan, batch_rows, batch_bytes)
            return
        yield from self._raw_stream(self._raw_session(), plan, batch_rows, batch_bytes)

    def _check_pageable(self, plan: ReadPlan) -> None:
        """An export job pages by key (``order``), which an ENUM or a SET key cannot be; a
        template discovered before its column's native type was kept does not tell, so the
        server is asked (only of text keys: ENUM and SET read as text)."""
        if not plan.order or plan.table is None:
            return
        text = tuple(k for k in plan.order if plan.column_type(k) == "string")
        if not text:
            return
        where = (plan.table.schema or self._s.database, plan.table.name, text)
        try:
            with self._connect() as conn, conn.cursor() as cur:
                cur.execute(KEY_TYPES_SQL, where)
                found = cur.fetchall()
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        columns = [ColumnInfo(name, "string", native=native_type(t)) for name, t in found]
        reason = unpageable_key_reason(columns, list(plan.order))
        if reason is not None:
            raise SourceError(f"this object cannot be exported: {reason}")

    def _reads_raw(self) -> bool:
        # The host name check of TLS with a CA needs PyMySQL's TLS on our own socket.
        return not self._s.ssl_ca and raw.AVAILABLE

    def _raw_session(self) -> raw.RawSession:
        s = self._s
        session = raw.RawSession(
            s,
            self._password,
            base.server_addresses_or_fail(s.host, s.port, s.database, self._policy, self._failed),
            connect_timeout_s(s.connect_timeout, self._policy),
            self._policy.read_timeout_s,
            self._failed,
        )
        session.track(self._calls, self._kill)
        return session

    def _raw_stream(
        self, session: raw.RawSession, plan: ReadPlan, batch_rows: int, batch_bytes: int | None
    ) -> Iterator[pa.RecordBatch]:
        """The plan's batches read on ``session`` (perhaps in its snapshot), closed at the end."""
        query = select_statement(
            plan, self.dialect, column_sql, convert=naive_utc, quote=session.escape
        ).sql
        schema = arrow_schema(plan.fields)
        yield from session.stream(query, plan.fields, schema, self._s, batch_rows, batch_bytes)

    def _kill(self, thread_id: int) -> None:
        """Stops a statement of this source's over a connection of its own (not tracked: it
        is the interrupt)."""
        with self._connect(tracked=False) as conn, conn.cursor() as cur:
            cur.execute(f"KILL QUERY {int(thread_id)}")

    def _stream(
        self,
        conn: pymysql.connections.Connection[Any],
        plan: ReadPlan,
        batch_rows: int,
        batch_bytes: int | None,
    ) -> Iterator[pa.RecordBatch]:
        """The plan's batches read on ``conn`` (perhaps in its snapshot transaction), which
        is closed at the end."""
        schema = arrow_schema(plan.fields)
        try:
            query = self._query(conn, plan)
            with conn.cursor() as cur:
                try:
                    cur.execute(query)
                    fixes = column_fixes(cur.description, plan.fields, self._s)
                    for rows in bounded_rows(cur, plan.fields, batch_rows, batch_bytes):
                        yield rows_to_batch(rows, plan.fields, schema, fixes)
                except pymysql.Error as exc:
                    raise SourceError(clean_error(exc)) from exc
        finally:
            conn.close()

    def _query(self, conn: pymysql.connections.Connection[Any], plan: ReadPlan) -> str:
        # PyMySQL's parameters are %-formatting of the whole text: instead its own quoting
        # (which knows the session's charset and NO_BACKSLASH_ESCAPES) renders each value
        # into its place in the tree, and the text is executed without arguments.
        # PyMySQL writes an aware datetime without its offset: it gets the UTC one.
        return select_statement(
            plan, self.dialect, column_sql, convert=naive_utc, quote=conn.escape
        ).sql

    def partition_blocker(self, plan: ReadPlan) -> str | None:
        if plan.partition_key is None:
            return NO_PARTITION_KEY
        if not self._reads_raw():
            # PyMySQL decodes every value in Python: sessions of it in parallel only add
            # Python work, so a parallel read takes libmysqlclient's.
            return NO_CLIENT_LIBRARY if not raw.AVAILABLE else SSL_CA_READS
        try:
            with self._connect() as conn, conn.cursor() as cur:
                may_reload = "RELOAD" in privileges(cur)
        except pymysql.Error as exc:
            raise SourceError(clean_error(exc)) from exc
        return None if may_reload else NO_RELOAD

    def read_partitions(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> list[Iterator[pa.RecordBatch]]:
        """Writes are held off (FLUSH TABLES WITH READ LOCK, which needs RELOAD) while every
        session starts its consistent snapshot, so all see the same data; then released."""
        sessions: list[raw.RawSession] = []
        try:
            with self._connect() as lock, lock.cursor() as held:
                held.execute("FLUSH TABLES WITH READ LOCK")
                try:
                    for _ in range(plan.parallelism):
                        sessions.append(self._raw_session())
                        sessions[-1].run("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                finally:
                    held.execute("UNLOCK TABLES")
            key = plan.partition_key
            assert key is not None
            first = sessions[0]
            ((low, high),) = first.run(bounds_statement(plan, key, self.dialect, first.escape))
        except BaseException as exc:
            for session in sessions:
                session.close()
            if isinstance(exc, pymysql.Error):
                raise SourceError(clean_error(exc)) from exc
            raise
        # The key is an integer column: its bounds come as the server's text.
        ranges = [None] if low is None else plan.key_ranges(int(low), int(high))
        for session in sessions[len(ranges) :]:  # fewer key values than sessions
            session.close()
        return [
            self._raw_stream(s, replace(plan, key_range=r, parallelism=1), batch_rows, batch_bytes)
            for s, r in zip(sessions, ranges, strict=False)
        ]

    def close(self) -> None:
        return None

    def interrupt(self) -> None:
        self._calls.interrupt()

    def _track(self, conn: pymysql.connections.Connection[Any]) -> None:
        # PyMySQL reads with plain blocking socket calls: shutting the socket down is what
        # makes a blocked recv return (closing it from another thread would not).
        try:
            self._calls.track(SocketRef.of(conn._sock.fileno()).shutdown)
        except BaseException:
            conn.close()
            raise
