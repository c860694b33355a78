"""Seed 002's wire shapes: camelCase as the seed names them; an attribute it does not name is
refused (422 naming it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from egress.domain.catalog import ELEMENT_TYPES

ElementType = Literal[ELEMENT_TYPES]  # type: ignore[valid-type]


class RunBody(BaseModel):
    """The run's selection: ``selectAll`` every record matching ``whereClause``, or the
    ``rows`` picked by the template's primary key."""

    model_config = ConfigDict(extra="forbid")
    rows: list[dict[str, Any]] | None = Field(
        default=None, description="rows to extract, each carrying the template's primary key"
    )
    whereClause: str | None = Field(
        default=None, max_length=100_000, description="SQL condition over the template's fields"
    )
    selectAll: bool | None = Field(
        default=None, description="true: every matching record (rows absent or empty)"
    )


class RunAccepted(BaseModel):
    requestId: str
    executionId: str
    status: Literal["Pending"]


class UiMetadata(BaseModel):
    """The vendor's display hints, kept as given."""

    model_config = ConfigDict(extra="allow")
    title: str | None = Field(default=None, max_length=200)


class ColumnConfiguration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, description="a column of the source table")
    description: str | None = Field(default=None, max_length=10_000)
    uiMetadata: UiMetadata | None = None
    uiDataType: str | None = Field(default=None, max_length=100)


class OutputConfiguration(BaseModel):
    model_config = ConfigDict(extra="forbid")
    createNewWorkbook: bool = Field(default=True, description="true: a new data table")
    title: str | None = Field(default=None, min_length=1, max_length=200)
    tableId: str | None = Field(default=None, max_length=36, description="an existing one")


class CronSchedule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cronExpression: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str = Field(default="UTC", min_length=1, max_length=64, description="IANA name")


class ExtractionIn(BaseModel):
    """The vendor's configuration object (PUT: the full object, ``id`` included or not)."""

    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(default=None, max_length=36)
    title: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")
    elementType: ElementType
    elementId: str = Field(min_length=1, max_length=100)
    inputTableId: str | None = Field(default=None, max_length=36)
    primaryKeyColumnId: list[str] | None = Field(default=None, max_length=64)
    outputConfiguration: OutputConfiguration | None = None
    storeExtractedData: bool = True
    scheduleType: Literal["MANUAL", "CRON"] = "MANUAL"
    schedule: CronSchedule | None = None
    columnConfiguration: list[ColumnConfiguration] | None = Field(default=None, max_length=2000)
    extractionMode: Literal["BASIC", "ADVANCED"] = "BASIC"


class ExtractionOut(BaseModel):
    id: str
    title: str
    elementType: str
    elementId: str
    inputTableId: str
    primaryKeyColumnId: list[str]
    outputConfiguration: dict[str, Any]
    storeExtractedData: bool
    scheduleType: Literal["MANUAL", "CRON"]
    schedule: dict[str, Any] | None
    columnConfiguration: list[dict[str, Any]]
    extractionMode: Literal["BASIC"]
