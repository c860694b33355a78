"""What a connection contains: schemas (FOLDER), tables/views (FILE) and columns (COLUMN)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    def qualified_name(self) -> str:
        return self.path if self.path is not None else f"{self.schema}.{self.name}"

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.columns if c.name == name), None)
