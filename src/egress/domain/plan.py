"""A read plan: what one run takes from its source, built from the frozen execution."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from egress.domain.catalog import ColumnInfo, TableRef
from egress.domain.errors import Invalid
from egress.domain.options import DateRange, Window, date_range

if TYPE_CHECKING:  # the spec holds a KeySelection: a runtime import would be circular
    from egress.domain.spec import ExecutionSpec


@dataclass(frozen=True)
class KeySelection:
    """Selected rows: records whose ``fields`` equal one of ``values``."""

    fields: list[str]
    values: list[list[Any]]


@dataclass(frozen=True)
class KeyRange:
    """One partition of a parallel read: rows whose ``field`` is in [low, high) (None: open),
    and, with ``nulls``, the rows whose ``field`` is NULL (no range holds them)."""

    field: str
    low: int | None
    high: int | None
    nulls: bool = False


INTEGER_TYPES = frozenset({"int16", "int32", "int64"})


# A file written in parts (engine/parts.py) takes the first part as it is read and each later
# one from its spill file once the parts before it are done, appended (copied and hashed) about
# ten times as fast as a part is read (bench/README.md, issue 19). With equal ranges every part
# ended together and the appending came after them all (~0.1 s a million rows of CSV); the
# first range narrower by that much per later one lets it overlap their reading. (A read into
# one shared writer, Parquet or a split, is bound by that writer: the ranges' sizes matter
# little there.)
APPEND_COST = 0.1


def first_part_weight(parts: int) -> float:
    """The first range's width against each later one's."""
    return max(0.5, 1 - APPEND_COST * (parts - 1))


def key_ranges(field: str, low: int, high: int, parts: int, nulls: bool = False) -> list[KeyRange]:
    """[low, high] cut into ``parts`` ranges (fewer when it holds fewer values) of equal
    width but the first, ``first_part_weight`` times as wide; the first and the last stay
    open, and the first also takes the NULL keys of a key that may be NULL (``nulls``: a view's
    or a SQL template's declared key), so every row of the plan is in exactly one."""
    parts = max(1, min(parts, high - low + 1))
    first = round(100 * first_part_weight(parts))  # in hundredths of a later range's width
    total = first + 100 * (parts - 1)
    cuts = [
        max(low + i, low + (high - low + 1) * (first + 100 * (i - 1)) // total)  # none empty
        for i in range(1, parts)
    ]
    bounds: list[int | None] = [None, *cuts, None]
    return [KeyRange(field, bounds[i], bounds[i + 1], nulls and i == 0) for i in range(parts)]


@dataclass(frozen=True)
class ReadPlan:
    table: TableRef | None  # None when ``query`` is set
    fields: list[ColumnInfo]  # what is written, in order
    columns: list[ColumnInfo] = field(default_factory=list)  # every template field (filters)
    dates: DateRange | None = None
    where: str | None = None
    keys: KeySelection | None = None
    window: Window | None = None
    query: str | None = None  # a SQL template's SELECT: read from it instead of a table
    null_values: tuple[str, ...] | None = None  # CSV: the template's NULL spellings, if its own
    # Keyset reading (export jobs): rows in ``order`` after the key values ``after``, at
    # most ``limit`` of them (from the ``offset``-th on, for finding a job's last key).
    order: list[str] = field(default_factory=list)
    after: list[Any] | None = None
    limit: int | None = None
    offset: int | None = None
    # A parallel read (configuration ``parallelism``): how many sessions, by which key; and
    # the one range a partition's session reads.
    parallelism: int = 1
    partition_key: str | None = None
    key_range: KeyRange | None = None

    def column_type(self, name: str) -> str:
        found = next((c for c in self.columns or self.fields if c.name == name), None)
        return found.type if found else "string"

    def key_ranges(self, low: int, high: int) -> list[KeyRange]:
        """The partitions of a parallel read whose key runs from ``low`` to ``high``."""
        key = self.partition_key
        assert key is not None  # only a keyed plan is read in parallel
        found = next((c for c in self.columns or self.fields if c.name == key), None)
        nulls = found is None or found.nullable
        return key_ranges(key, low, high, self.parallelism, nulls)


def select_fields(template_fields: list[ColumnInfo], wanted: list[str] | None) -> list[ColumnInfo]:
    """The configuration's fields in the order given; all template fields when none given."""
    if wanted is None:
        return list(template_fields)
    by_name = {f.name: f for f in template_fields}
    unknown = [name for name in wanted if name not in by_name]
    if unknown:
        raise Invalid.at(
            ("body", "fields"),
            f"unknown field(s) {', '.join(map(repr, unknown))}; "
            f"the template has: {', '.join(by_name)}",
        )
    if len(set(wanted)) != len(wanted):
        raise Invalid.at(("body", "fields"), "fields must not repeat")
    return [by_name[name] for name in wanted]


def plan_from_snapshot(spec: ExecutionSpec, window: Window | None = None) -> ReadPlan:
    """The plan of a run, from its execution's frozen spec (and incremental window)."""
    template, options = spec.template, spec.options
    return ReadPlan(
        table=template.source,
        fields=select_fields(template.fields, spec.configuration.fields),
        columns=list(template.fields),
        dates=date_range(
            template.date_field, options.date_from, options.date_to, options.date_to_exclusive
        ),
        where=options.where_clause,
        keys=options.rows,
        window=window,
        query=template.query,
        null_values=None if template.csv_null_values is None else tuple(template.csv_null_values),
        parallelism=spec.configuration.parallelism,
        partition_key=_partition_key(template.primary_key, template.fields),
    )


def _partition_key(primary_key: list[str], fields: list[ColumnInfo]) -> str | None:
    """The key a parallel read cuts into ranges: a one-column integer primary key."""
    types = {f.name: f.type for f in fields}
    if len(primary_key) == 1 and types.get(primary_key[0]) in INTEGER_TYPES:
        return primary_key[0]
    return None
