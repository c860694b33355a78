"""Values quoted into a statement's tree by psycopg: COPY takes no parameters and ADBC binds
only typed ones (``date > text`` fails)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from egress.query.select import Quote
from egress.sources.base import SourceError
from egress.sources.postgresql.connect import first_line
from egress.sources.postgresql.settings import SQL_ASCII


def quoter(conn: psycopg.Connection[Any], legacy_codec: str | None) -> Quote:
    """psycopg's quoting on ``conn``; ``legacy_codec``: the encoding a SQL_ASCII database's
    text is in, when it is not UTF-8."""

    def quote(value: Any) -> str:
        if legacy_codec is not None and isinstance(value, str) and not value.isascii():
            # The query text travels as UTF-8 and SQL_ASCII keeps bytes as they come: the
            # value goes as its bytes in the database's own encoding.
            try:
                raw = value.encode(legacy_codec)
            except UnicodeEncodeError as exc:
                raise SourceError(
                    f"the filter value {value!r} cannot be written in {legacy_codec}"
                ) from exc
            return f"convert_from('\\x{raw.hex()}'::bytea, '{SQL_ASCII}')"
        try:
            return sql.Literal(value).as_string(conn)
        except psycopg.Error as exc:  # e.g. a NUL character, which text cannot hold
            raise SourceError(f"a value in the filter cannot be sent: {first_line(exc)}") from exc

    return quote
