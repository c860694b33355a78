"""Seed 001's wire shapes: snake_case, and any attribute it does not name is refused (400)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from egress.query.conditions import OPERATORS

T = TypeVar("T")
_STRICT = ConfigDict(extra="forbid")
Operator = Literal[OPERATORS]  # type: ignore[valid-type]
# The schedules issue brings schedules and the historical sync; until then a value for
# either is refused rather than stored and silently never acted on.
_NOT_YET = "is not supported by this server yet; send null or leave it out"


class Filter(BaseModel):
    model_config = _STRICT
    field: str = Field(min_length=1, max_length=200)
    operator: Operator
    value: Any = None


def _no_schedules(value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if value:
        raise ValueError(_NOT_YET)
    return value


def _no_backfill(value: date | None) -> date | None:
    if value is not None:
        raise ValueError(_NOT_YET)
    return value


class TemplateSettings(BaseModel):
    model_config = _STRICT
    fields: list[str] | None = None
    filters: list[Filter] | None = None
    additional_params: dict[str, Any] | None = None


class ExtractCreate(BaseModel):
    model_config = _STRICT
    data_table_title: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    template_id: str = Field(min_length=1, max_length=36)
    template_settings: TemplateSettings | None = None
    schedules: list[dict[str, Any]] | None = None
    sync_historical_data: date | None = None
    accounts: list[str] | None = None

    _schedules = field_validator("schedules")(_no_schedules)
    _backfill = field_validator("sync_historical_data")(_no_backfill)


class ExtractUpdate(BaseModel):
    """PUT and PATCH: the updatable attributes."""

    model_config = _STRICT
    fields: list[str] | None = None
    filters: list[Filter] | None = None
    additional_params: dict[str, Any] | None = None
    schedules: list[dict[str, Any]] | None = None
    sync_historical_data: date | None = None

    _schedules = field_validator("schedules")(_no_schedules)
    _backfill = field_validator("sync_historical_data")(_no_backfill)


class ExtractRunRequest(BaseModel):
    model_config = _STRICT
    date_from: str | None = Field(default=None, max_length=40)
    date_to: str | None = Field(default=None, max_length=40)


class ExtractOut(BaseModel):
    id: str
    title: str
    template_id: str
    connection_id: str
    account_id: str | None
    account_name: str | None
    created_at: datetime
    last_sync: datetime | None
    status: Literal["active", "syncing", "paused", "error", "inactive"]
    error_text: str | None
    schedules_limit: int
    sync_historical_data: date | None
    fields: list[str] | None
    filters: list[dict[str, Any]]
    additional_params: dict[str, Any]
    schedules: list[dict[str, Any]]
    data_table_id: str | None


class ExtractRunOut(ExtractOut):
    execution_id: str


class Page(BaseModel, Generic[T]):
    count: int
    next: str | None
    previous: str | None
    results: list[T]


class Account(BaseModel):
    id: str
    account_id: str
    title: str


class Accounts(BaseModel):
    results: list[Account]


class Datasource(BaseModel):
    id: str
    name: str
    title: str


class Connection(BaseModel):
    id: str
    title: str
    datasource: str
    created_at: datetime


class ExtractTemplate(BaseModel):
    id: str
    title: str
    connection_id: str
    source_table: str
    fields: list[str]
    primary_key: list[str]
