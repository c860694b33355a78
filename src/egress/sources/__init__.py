"""Connectors: one module per connection type behind the Source protocol."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from egress.sources import files, mysql, sqlite
from egress.sources.base import Source, SourceError
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.policy import SourcePolicy, admit_server
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSettings, SqliteSource


@dataclass(frozen=True)
class Connector:
    settings_model: type[BaseModel]
    secret_names: frozenset[str]
    factory: Any  # (settings model instance, secrets, policy) -> Source
    # Checks settings against the trust policy when they are saved; raises Invalid.
    admit: Callable[[Any, SourcePolicy], None] | None = None


def _admit_server(settings: PostgresSettings, policy: SourcePolicy) -> None:
    admit_server(settings.host, settings.port, settings.database, policy)


CONNECTORS: dict[str, Connector] = {
    "postgresql": Connector(
        PostgresSettings, frozenset({"password"}), PostgresSource, _admit_server
    ),
    "sqlite": Connector(SqliteSettings, frozenset(), SqliteSource, sqlite.admit),
    "mysql": Connector(MysqlSettings, frozenset({"password"}), MysqlSource, mysql.admit),
    "files": Connector(
        FilesSettings, frozenset({"accessKeyId", "secretAccessKey"}), FilesSource, files.admit
    ),
}


def open_source(
    type_: str, settings: dict[str, Any], secrets: dict[str, str], policy: SourcePolicy
) -> Source:
    """A source for stored settings; the policy is checked again here, since what a stored
    name points at may have changed since it was saved."""
    connector = CONNECTORS[type_]
    try:
        model = connector.settings_model.model_validate(settings)
    except ValidationError as exc:  # saved before a rule was tightened
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SourceError(f"the connection's settings are no longer valid: {problems}") from exc
    source: Source = connector.factory(model, secrets, policy)
    return source


__all__ = ["CONNECTORS", "Connector", "Source", "SourceError", "SourcePolicy", "open_source"]
