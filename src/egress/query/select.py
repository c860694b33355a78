"""Plan → SELECT statement in a source's dialect."""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from egress.domain.catalog import ColumnInfo
from egress.domain.plan import ReadPlan

ColumnSql = Callable[[ColumnInfo], exp.Expression]


def column(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def plain_column(field: ColumnInfo) -> exp.Expression:
    return column(field.name)


def table(plan: ReadPlan) -> exp.Table:
    return exp.table_(plan.table_name, db=plan.schema_name, quoted=True)


def select_statement(plan: ReadPlan, dialect: str, column_sql: ColumnSql = plain_column) -> str:
    projections = [exp.alias_(column_sql(f), f.name, quoted=True) for f in plan.fields]
    return exp.select(*projections).from_(table(plan)).sql(dialect=dialect)
