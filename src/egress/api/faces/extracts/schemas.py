"""Seed 001's wire shapes: snake_case, and any attribute it does not name is refused (400)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from egress.api.native.schemas import MAX_SCHEDULES, DateWindow
from egress.query.conditions import OPERATORS

T = TypeVar("T")
_STRICT = ConfigDict(extra="forbid")
Operator = Literal[OPERATORS]  # type: ignore[valid-type]


class Filter(BaseModel):
    model_config = _STRICT
    field: str = Field(min_length=1, max_length=200)
    operator: Operator
    value: Any = None


class Schedule(BaseModel):
    """The native schedule item (``ScheduleIn``) with its names in snake_case, as this face
    speaks (the seed names no shape of its own). The rules (cron, zone, limit, ids) are the
    configurations service's."""

    model_config = _STRICT
    id: str | None = Field(default=None, max_length=36, description="keep it to keep the slot")
    cron: str = Field(min_length=1, max_length=200, description='"0 2 * * *" or @daily')
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="IANA name")
    enabled: bool = True
    date_window: DateWindow | None = None


Schedules = Annotated[list[Schedule] | None, Field(max_length=MAX_SCHEDULES)]


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
    schedules: Schedules = None
    sync_historical_data: date | None = None
    accounts: list[str] | None = None


class ExtractUpdate(BaseModel):
    """PUT and PATCH: the updatable attributes."""

    model_config = _STRICT
    fields: list[str] | None = None
    filters: list[Filter] | None = None
    additional_params: dict[str, Any] | None = None
    schedules: Schedules = None
    sync_historical_data: date | None = None


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
