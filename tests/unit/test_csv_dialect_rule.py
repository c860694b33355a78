"""csvDialect "postgres" is one plain COPY (one per session of a parallel read) into one CSV
file in storage."""

from __future__ import annotations

from typing import Any

import pytest

from egress.domain.spec import postgres_dialect_problem

STORAGE: dict[str, Any] = {"format": "csv", "destination": {"type": "storage"}}


def test_one_csv_file_from_postgresql_in_one_or_more_sessions_takes_it() -> None:
    assert postgres_dialect_problem("postgresql", STORAGE) is None
    assert postgres_dialect_problem("postgresql", STORAGE | {"parallelism": 1}) is None
    assert postgres_dialect_problem("postgresql", STORAGE | {"parallelism": 2}) is None


@pytest.mark.parametrize(
    ("source", "change", "reason"),
    [
        ("mysql", {}, "this template reads a mysql source"),
        ("postgresql", {"format": "parquet"}, "the format is parquet"),
        ("postgresql", {"split_by": "region"}, "no splitBy, no data table"),
        ("postgresql", {"destination": {"type": "data_table"}}, "no splitBy, no data table"),
    ],
)
def test_anything_else_is_refused_saying_why(
    source: str, change: dict[str, Any], reason: str
) -> None:
    problem = postgres_dialect_problem(source, STORAGE | change)
    assert problem is not None and reason in problem
