"""MySQL connection settings, and the check that admits them when they are saved."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from egress.domain.errors import Invalid
from egress.sources import confine
from egress.sources.policy import SourcePolicy, admit_server


class MysqlSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1)
    port: int = Field(default=3306, ge=1, le=65535)
    database: str = Field(min_length=1)
    user: str = Field(min_length=1)
    ssl: bool = Field(default=False, description="require TLS")
    ssl_ca: str | None = Field(default=None, description="CA bundle path to verify the server")
    connect_timeout: int = Field(default=10, ge=1, le=300)
    # camelCase: the names users type in the connection's settings
    tinyint1AsBoolean: bool = Field(
        default=True,
        description="TINYINT(1) is boolean (values other than 0/1 fail the run); false: int16",
    )
    zeroDates: Literal["null", "fail"] = Field(
        default="null",
        description="zero or invalid dates ('0000-00-00', '2026-02-30') are read as NULL or fail",
    )


def admit(settings: MysqlSettings, policy: SourcePolicy) -> None:
    """The server must be one a tenant may reach, and ``ssl_ca`` lie in a files root."""
    admit_server(settings.host, settings.port, settings.database, policy)
    if settings.ssl_ca is not None:
        try:
            confine.confined(confine.checked_spelling(settings.ssl_ca), policy)
        except confine.PathRefused as exc:
            raise Invalid.at(("body", "settings", "ssl_ca"), str(exc)) from exc
