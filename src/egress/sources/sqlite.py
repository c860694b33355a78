"""SQLite files, read with the standard library.

ADBC's SQLite driver infers each column's type from the first rows it sees and fails the
whole read when a later row disagrees (a column that starts with NULLs, say). SQLite is
dynamically typed, so we read with sqlite3 and build batches against the declared schema.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, field_validator

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.plan import ReadPlan
from egress.domain.types import decimal_type, parse_decimal
from egress.query.select import max_statement, select_statement, sqlite_value
from egress.sources.arrow_types import arrow_schema, arrow_type
from egress.sources.base import SourceError

SCHEMA = "main"
_DECIMAL = re.compile(r"(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\)")


class SqliteSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1)

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not Path(value).is_absolute():
            raise ValueError("must be an absolute path to a SQLite database file")
        return value


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


def _parse_python(logical: str) -> Callable[[Any], Any]:
    """Per-value fallback when a column's stored values need more than an Arrow cast."""
    if logical in ("timestamp", "timestamptz"):

        def to_dt(v: Any) -> Any:
            if isinstance(v, int | float):
                return datetime.fromtimestamp(v).replace(tzinfo=None)
            value = datetime.fromisoformat(str(v))
            if logical == "timestamptz" and value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return value

        return to_dt
    if logical == "date":
        return lambda v: date.fromisoformat(str(v)[:10])
    if logical == "time":
        return lambda v: time.fromisoformat(str(v))
    if logical == "boolean":
        return lambda v: str(v).strip().lower() in ("1", "true", "t", "yes", "y")
    if logical == "binary":
        return lambda v: v if isinstance(v, bytes) else str(v).encode()
    if parse_decimal(logical) is not None:
        return lambda v: Decimal(str(v))
    return str


def _column_array(name: str, values: list[Any], logical: str) -> pa.Array:
    target = arrow_type(logical)
    try:
        if logical in ("timestamp", "timestamptz", "date", "time") or parse_decimal(logical):
            strings = pa.array([None if v is None else str(v) for v in values], pa.string())
            return pc.cast(strings, target)
        return pc.cast(pa.array(values), target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    parse = _parse_python(logical)
    try:
        return pa.array([None if v is None else parse(v) for v in values], target)
    except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        bad = next((v for v in values if v is not None), None)
        raise SourceError(
            f"column {name!r} is declared {logical} but holds a value that is not: {bad!r} ({exc})"
        ) from exc


class SqliteSource:
    def __init__(self, settings: SqliteSettings, secrets: dict[str, str]) -> None:
        self._path = Path(settings.path)

    def _connect(self) -> sqlite3.Connection:
        if not self._path.is_file():
            raise SourceError(f"no SQLite database file at {self._path}")
        try:
            conn = sqlite3.connect(f"{self._path.as_uri()}?mode=ro", uri=True)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            raise SourceError(f"cannot open {self._path}: {exc}") from exc
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
            for name, kind in objects:
                info = conn.execute("SELECT * FROM pragma_table_info(?)", (name,)).fetchall()
                columns = [ColumnInfo(c[1], logical_type(c[2] or ""), not c[3]) for c in info]
                pk = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])]
                tables.append(TableInfo(SCHEMA, name, columns, pk, kind))
            return tables
        except sqlite3.Error as exc:
            raise SourceError(str(exc)) from exc
        finally:
            conn.close()

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        conn = self._connect()
        try:
            row = conn.execute(max_statement(plan, field, "sqlite")).fetchone()
        except sqlite3.Error as exc:
            raise SourceError(str(exc)) from exc
        finally:
            conn.close()
        return row[0] if row else None

    def read(self, plan: ReadPlan, batch_rows: int) -> Iterator[pa.RecordBatch]:
        schema = arrow_schema(plan.fields)
        conn = self._connect()
        try:
            statement = select_statement(plan, "sqlite", convert=sqlite_value)
            try:
                cur = conn.execute(statement.sql, statement.params)
            except sqlite3.Error as exc:
                raise SourceError(str(exc)) from exc
            while rows := cur.fetchmany(batch_rows):
                columns = list(zip(*rows, strict=True))
                arrays = [
                    _column_array(f.name, list(col), f.type)
                    for f, col in zip(plan.fields, columns, strict=True)
                ]
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)
        finally:
            conn.close()

    def close(self) -> None:
        return None
