"""What a connection contains: schemas (FOLDER), tables/views (FILE) and columns (COLUMN)."""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "type": self.type, "nullable": self.nullable}


@dataclass(frozen=True)
class TableInfo:
    schema: str
    name: str
    columns: list[ColumnInfo]
    primary_key: list[str] = field(default_factory=list)
    kind: str = "table"  # table | view | file | folder (a folder of files as one dataset)
    path: str | None = None  # files: the path relative to the connection, which names it
    error: str | None = None  # files: why it cannot be read (shown in the catalog, no template)

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
