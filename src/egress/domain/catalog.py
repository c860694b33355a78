"""What a connection contains: schemas (FOLDER), tables/views (FILE) and columns (COLUMN)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field, replace

from egress.domain.errors import Invalid, NotFound
from egress.domain.types import decimal_type, parse_decimal

# Bounds a list of CSV NULL spellings (a connection's or a template's ``csvNullValues``): each
# is a whole field's text, compared with every field read.
MAX_CSV_NULL_VALUES = 100
MAX_CSV_NULL_VALUE_CHARS = 100

# The logical types CSV text can be parsed into exactly (``columnTypes`` of a template).
CSV_TYPES = frozenset(
    {
        "boolean",
        "int16",
        "int32",
        "int64",
        "float32",
        "float64",
        "decimal",
        "string",
        "date",
        "time",
        "timestamp",
        "timestamptz",
    }
)


# The element kinds of a connection's catalog (seed 002's elementType).
FOLDER, FILE, COLUMN = "FOLDER", "FILE", "COLUMN"
ELEMENT_TYPES = (FOLDER, FILE, COLUMN)
# A files connection's top folder.
ROOT_FOLDER = "."


def element_id(connection_id: str, element_type: str, path: str) -> str:
    """A catalog element's id: opaque, URL-safe (one path segment) and stable — a short hash
    of its connection, kind and readable path (``public.orders.amount`` or ``sales/x.parquet``
    cannot travel in a path segment; the path stays readable as the element's ``path``)."""
    key = f"{connection_id}\0{element_type}\0{path}".encode()
    digest = hashlib.blake2b(key, digest_size=12).digest()
    return base64.urlsafe_b64encode(digest).decode()


def element_paths(ref: TableRef) -> tuple[str, str]:
    """(folder path, file path) of the table ``ref``: a database's schema and
    ``schema/table``; a files connection's folder (``.`` the top) and the file's path."""
    if ref.schema is None:
        folder = ref.name.rsplit("/", 1)[0] if "/" in ref.name else ROOT_FOLDER
        return folder, ref.name
    return ref.schema, f"{ref.schema}/{ref.name}"


def column_path(file_path: str, column: str) -> str:
    return f"{file_path}/{column}"


def element_fields(
    connection_id: str,
    ref: TableRef | None,
    read: list[str],
    primary_key: list[str],
    element_type: str,
    wanted: str,
) -> list[str] | None:
    """What a run of a configuration that reads ``read`` from ``ref`` extracts when started
    from the element ``wanted``: every field (None) from its folder or file, one column and
    the key from a column of it. Any other element is not one the configuration extracts."""
    if ref is not None:
        folder, file = element_paths(ref)
        if element_type == FOLDER and wanted == element_id(connection_id, FOLDER, folder):
            return None
        if element_type == FILE and wanted == element_id(connection_id, FILE, file):
            return None
        for name in read if element_type == COLUMN else []:
            if wanted == element_id(connection_id, COLUMN, column_path(file, name)):
                return [*primary_key, *([] if name in primary_key else [name])]
    raise NotFound(f"{element_type} element {wanted} is not one this configuration extracts")


def quoted_part(part: str) -> str:
    """A name part as shown: as it is, or in double quotes (``""`` for a quote) when it holds
    a ``.`` or a ``"``, so a shown qualified name always reads back as the same parts."""
    if part and "." not in part and '"' not in part:
        return part
    return '"' + part.replace('"', '""') + '"'


@dataclass(frozen=True)
class TableRef:
    """Where a template reads, kept as parts: a database table as (schema, name); a files
    connection's file or folder as its path (no schema)."""

    schema: str | None
    name: str

    @property
    def display(self) -> str:
        """``public.orders``, ``"x.y".z``: unambiguous, so two tables never share it."""
        if self.schema is None:
            return self.name
        return f"{quoted_part(self.schema)}.{quoted_part(self.name)}"


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str  # a logical type, see egress.domain.types
    nullable: bool = True
    # The source's own type where reading a value exactly takes more than the logical type
    # (PostgreSQL's char(n) and inet: a cast to text strips the one's padding and adds a /32
    # to the other); None for every other column.
    native: str | None = None

    def as_dict(self) -> dict[str, object]:
        shown: dict[str, object] = {} if self.native is None else {"native": self.native}
        return {"name": self.name, "type": self.type, "nullable": self.nullable, **shown}


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: list[ColumnInfo]
    primary_key: list[str] = field(default_factory=list)
    kind: str = "table"  # table | view | file | folder (a folder of files as one dataset)
    path: str | None = None  # files: the path relative to the connection, which names it
    error: str | None = None  # files: why it cannot be read (shown in the catalog, no template)
    format: str | None = None  # files: csv | parquet | json

    @property
    def ref(self) -> TableRef:
        return (
            TableRef(None, self.path) if self.path is not None else TableRef(self.schema, self.name)
        )

    @property
    def qualified_name(self) -> str:
        return self.ref.display

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)


def enforced_key(table: TableInfo, unique_keys: list[list[str]]) -> list[str]:
    """The key a table's rows are unique by, as its source enforces it: its PRIMARY KEY, else
    its shortest UNIQUE key over NOT NULL columns (the first listed among equals); [] when it
    has neither. A UNIQUE key over a nullable column allows many NULLs: it is not a key."""
    if table.primary_key:
        return table.primary_key
    not_null = {c.name for c in table.columns if not c.nullable}
    keys: list[list[str]] = [k for k in unique_keys if k and all(c in not_null for c in k)]
    return sorted(keys, key=len)[0] if keys else []  # stable: the first among equals


def with_enforced_keys(
    tables: list[TableInfo], unique_keys: dict[tuple[str, str], list[list[str]]]
) -> list[TableInfo]:
    """``tables`` with ``enforced_key`` as their key; ``unique_keys`` by (schema, name), each
    a UNIQUE index's columns in order (the catalog's own query)."""
    return [
        replace(t, primary_key=enforced_key(t, unique_keys.get((t.schema, t.name), [])))
        for t in tables
    ]


def group_unique_keys(
    rows: list[tuple[str, str, str, str]],
) -> dict[tuple[str, str], list[list[str]]]:
    """Rows of (schema, table, index, column), ordered by index and column position → each
    table's UNIQUE keys."""
    found: dict[tuple[str, str, str], list[str]] = {}
    for schema, table, index, column in rows:
        found.setdefault((schema, table, index), []).append(column)
    keys: dict[tuple[str, str], list[list[str]]] = {}
    for (schema, table, _index), columns in found.items():
        keys.setdefault((schema, table), []).append(columns)
    return keys


def with_column_types(
    columns: list[ColumnInfo], column_types: dict[str, str], table: TableInfo
) -> list[ColumnInfo]:
    """A custom template's own types for some columns (``columnTypes``): only for CSV files,
    whose text is parsed into whatever type the template says; a value that does not parse
    then fails the run instead of being changed."""
    loc = ("body", "column_types")
    if not column_types:
        return columns
    if table.format != "csv":
        raise Invalid.at(
            loc, "only CSV files take column types; other sources have their declared types"
        )
    names = {c.name for c in columns}
    for name, logical in column_types.items():
        if name not in names:
            raise Invalid.at((*loc, name), f"unknown field {name!r}")
        bounded = parse_decimal(logical)
        if logical not in CSV_TYPES and (bounded is None or decimal_type(*bounded) != logical):
            raise Invalid.at(
                (*loc, name),
                f"{logical!r} is not a type CSV text can be read as; use one of "
                f"{', '.join(sorted(CSV_TYPES))} or decimal(p,s) with p at most 38",
            )
    return [replace(c, type=column_types.get(c.name, c.type)) for c in columns]


def csv_null_values(values: list[str], table: TableInfo) -> tuple[str, ...]:
    """A custom template's own NULL spellings (``csvNullValues``), instead of its connection's:
    only for CSV files, whose text is all there is to tell a NULL by."""
    loc = ("body", "csv_null_values")
    if table.format != "csv":
        raise Invalid.at(loc, "only CSV files take NULL spellings; other formats have real NULLs")
    if len(values) > MAX_CSV_NULL_VALUES:
        raise Invalid.at(loc, f"at most {MAX_CSV_NULL_VALUES} spellings")
    for i, value in enumerate(values):
        if len(value) > MAX_CSV_NULL_VALUE_CHARS:
            raise Invalid.at((*loc, i), f"at most {MAX_CSV_NULL_VALUE_CHARS} characters")
    return tuple(values)


def accounts_of(tables: list[TableInfo]) -> list[str]:
    """A connection's accounts — its schemas (PostgreSQL), databases (MySQL) or folders holding
    files (files connections; ``.`` the top) — from its catalog, sorted."""
    return sorted({t.schema for t in tables})


def account_of(tables: list[TableInfo], ref: TableRef | None) -> str | None:
    """The account the table ``ref`` is in (None for a SQL template, or a table that is gone)."""
    found = next((t for t in tables if ref is not None and t.ref == ref), None)
    return None if found is None else found.schema
