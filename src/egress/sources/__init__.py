"""Connectors: one module per connection type behind the Source protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from egress.sources.base import Source, SourceError
from egress.sources.files import FilesSettings, FilesSource
from egress.sources.mysql import MysqlSettings, MysqlSource
from egress.sources.postgresql import PostgresSettings, PostgresSource
from egress.sources.sqlite import SqliteSettings, SqliteSource


@dataclass(frozen=True)
class Connector:
    settings_model: type[BaseModel]
    secret_names: frozenset[str]
    factory: Any  # (settings model instance, secrets) -> Source


CONNECTORS: dict[str, Connector] = {
    "postgresql": Connector(PostgresSettings, frozenset({"password"}), PostgresSource),
    "sqlite": Connector(SqliteSettings, frozenset(), SqliteSource),
    "mysql": Connector(MysqlSettings, frozenset({"password"}), MysqlSource),
    "files": Connector(FilesSettings, frozenset({"accessKeyId", "secretAccessKey"}), FilesSource),
}


def open_source(type_: str, settings: dict[str, Any], secrets: dict[str, str]) -> Source:
    connector = CONNECTORS[type_]
    source: Source = connector.factory(connector.settings_model.model_validate(settings), secrets)
    return source


__all__ = ["CONNECTORS", "Connector", "Source", "SourceError", "open_source"]
