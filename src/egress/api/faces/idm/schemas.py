"""Seed 003's request bodies; responses are built by ``presenters`` (the seed's shapes keep a
null ``nextCursor`` and leave out what a status does not have)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from egress.api.native.schemas import CsvDialect
from egress.api.native.wire import Request

# A cursor is a few key values, signed; far longer is not one of ours.
MAX_CURSOR_CHARS = 8192
MAX_FIELDS = 2000


class ExportBody(Request):
    cursor: str | None = Field(default=None, min_length=1, max_length=MAX_CURSOR_CHARS)
    # Egress extras: the file's format, and which fields it holds (default every field).
    format: Literal["jsonl", "csv", "parquet"] = "jsonl"
    fields: list[str] | None = Field(default=None, min_length=1, max_length=MAX_FIELDS)
    csv_dialect: CsvDialect | None = Field(
        default=None,
        description='CSV rendering: "egress" (the default) or "postgres" (PostgreSQL\'s own text'
        " rendering through plain COPY: fastest; a PostgreSQL template, or a data table of a"
        " PostgreSQL warehouse)",
    )
