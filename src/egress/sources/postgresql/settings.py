"""PostgreSQL connection settings, the session every connection starts, and the
encodings a SQL_ASCII database may hold."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Every session renders values the same way, whichever path (Arrow or COPY) reads them, and
# only reads: a SQL template that calls a function with side effects fails instead of writing.
SESSION_SETTINGS = (
    "SET default_transaction_read_only = on",
    "SET TIME ZONE 'UTC'",
    "SET DateStyle = 'ISO, YMD'",
    "SET IntervalStyle = 'iso_8601'",
    "SET extra_float_digits = 1",
    # csvDialect "postgres" writes bytea as PostgreSQL's text: hex, whatever the database says.
    "SET bytea_output = 'hex'",
)


def statement_limit(read_timeout_s: float | None) -> str:
    if read_timeout_s is None:  # a run: a big sort's first row may take long (stall limit)
        return "RESET statement_timeout"
    return f"SET statement_timeout = {int(read_timeout_s * 1000)}"


def session_settings(read_timeout_s: float | None) -> tuple[str, ...]:
    return (*SESSION_SETTINGS, statement_limit(read_timeout_s))


# What a SQL_ASCII database's bytes are (it stores them unchecked and cannot convert them):
# the Python codec that decodes them, and the client_encoding that passes them unchanged.
SOURCE_ENCODINGS = {
    "utf-8": "UTF8",
    "latin-1": "LATIN1",
    "iso-8859-15": "LATIN9",
    "windows-1252": "WIN1252",
    "windows-1251": "WIN1251",
    "koi8-r": "KOI8R",
    "shift_jis": "SJIS",
    "euc-jp": "EUC_JP",
    "gbk": "GBK",
    "big5": "BIG5",
}
# Every session speaks UTF-8: the server converts from the database's encoding (LATIN1, …).
CLIENT_ENCODING = "UTF8"
SQL_ASCII = "SQL_ASCII"


class PostgresSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=5432, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    sslmode: Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] = "prefer"
    connect_timeout: int = Field(default=10, ge=1, le=300)
    # camelCase: the names users type in the connection's settings
    sourceEncoding: str = Field(
        default="utf-8",
        description="SQL_ASCII databases only: the encoding of their bytes (strictly decoded)",
    )

    @field_validator("sourceEncoding")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in SOURCE_ENCODINGS:
            raise ValueError(f"must be one of {', '.join(SOURCE_ENCODINGS)}")
        return value
