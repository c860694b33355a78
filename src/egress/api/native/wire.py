"""The wire's base models: camelCase bodies, requests that refuse unknown fields, the paged
list envelope, and PATCH fields that may be left out but not sent as null."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from egress.domain.paging import total_pages

T = TypeVar("T")
NAME_RULES: dict[str, Any] = {"min_length": 1, "max_length": 200, "pattern": r"^[^\x00-\x1f]+$"}
Name = Field(**NAME_RULES)


def _not_null(schema: dict[str, Any]) -> None:
    """The field's schema without its null member (and its null default)."""
    members = [m for m in schema.pop("anyOf") if m.get("type") != "null"]
    schema.pop("default", None)
    schema.update(members[0])


def NotNull(**rules: Any) -> Any:  # used like pydantic's Field
    """A PATCH field that may be left out but not sent as null (the rule that refuses null is
    the service's): None stands for "not given", and the OpenAPI document does not offer null."""
    return Field(default=None, json_schema_extra=_not_null, **rules)


class Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Request(Wire):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ListEnvelope(Wire, Generic[T]):
    data: list[T]
    page: int
    limit: int
    total_size: int
    total_pages: int

    @classmethod
    def of(cls, items: list[T], page: int, limit: int, total: int) -> ListEnvelope[T]:
        return cls(
            data=items,
            page=page,
            limit=limit,
            total_size=total,
            total_pages=total_pages(total, limit),
        )
