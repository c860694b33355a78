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
        default=None, description="true: every matching record (then no rows)"
    )


class RunAccepted(BaseModel):
    requestId: str
    executionId: str
    status: Literal["Pending"]
