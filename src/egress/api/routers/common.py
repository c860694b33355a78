"""Pieces every router shares: paging parameters and settings validation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ValidationError

from egress.domain.errors import FieldError, Invalid
from egress.domain.paging import DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, PageRequest


def page_request(
    page: Annotated[int, Query(ge=0, le=MAX_PAGE, description="0-based page number")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(page=page, limit=limit)


def validate_model(model: type[BaseModel], data: dict[str, Any], loc: str) -> BaseModel:
    """Validate nested free-form settings, reporting errors at ``body.<loc>.<field>``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            FieldError(("body", loc, *(str(p) for p in e["loc"])), e["msg"]) for e in exc.errors()
        ]
        detail = "; ".join(f"{loc}.{'.'.join(map(str, e.loc[2:]))}: {e.msg}" for e in errors)
        raise Invalid(detail=f"invalid {loc}: {detail}", errors=errors) from exc
