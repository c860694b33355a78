"""Rules of data tables: one table is loaded in one way, from one template.

A table created by upsert merges by its key and one created by append has none; loading it in
another mode, by another key, or from another template would merge rows by columns that do not
identify them (or fail in the warehouse). Such a load is refused when the configuration is saved
and again when a run starts, with the same message.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from egress.domain.catalog import ColumnInfo

UPSERT = "upsert"
APPEND = "append"


@dataclass(frozen=True)
class Loading:
    """How a data table is (or would be) loaded."""

    mode: str  # UPSERT or APPEND
    primary_key: list[str]  # the merge key; [] for APPEND
    template_id: str | None  # None: not recorded (tables created before this rule)
    template_name: str  # for messages

    def describe(self) -> str:
        how = (
            f"by upsert on ({', '.join(self.primary_key)})" if self.mode == UPSERT else "by append"
        )
        if self.template_id is None:
            return how
        return f"{how} from template {self.template_name!r}"


def loading_conflict(
    table: str, existing: Loading, wanted: Loading, loaded_by: str | None = None
) -> str | None:
    """Why ``wanted`` may not load ``table``, which is loaded as ``existing`` (by the
    configuration named ``loaded_by``, or as the table was created); None when it may."""
    same_template = existing.template_id is None or existing.template_id == wanted.template_id
    if (
        existing.mode == wanted.mode
        and existing.primary_key == wanted.primary_key
        and same_template
    ):
        return None
    subject = (
        f"data table {table!r} was created to be loaded"
        if loaded_by is None
        else f"configuration {loaded_by!r} loads data table {table!r}"
    )
    return (
        f"{subject} {existing.describe()}; this configuration would load it {wanted.describe()}. "
        "A data table keeps the mode, key and template it was created with: load into a data "
        "table of another name"
    )


# A data table's name: lower-case letters, digits and underscores, as the native API demands.
NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,39}$")
_NAME_MAX = 40


def name_for_title(title: str) -> str:
    """The data table a title (seed 001's ``data_table_title``, e.g. ``Orders 2025``) loads:
    the title itself when it is a valid name, else its lower-cased letters and digits joined by
    ``_`` plus a hash of the whole title, so two titles never share a table by accident."""
    if NAME_PATTERN.match(title):
        return title
    slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    digest = hashlib.sha256(title.encode()).hexdigest()[:8]
    if not slug or slug[0].isdigit():
        slug = f"t_{slug}".rstrip("_")
    return f"{slug[: _NAME_MAX - len(digest) - 1].rstrip('_')}_{digest}"


def mode_for_key(primary_key: list[str]) -> str:
    """How a new data table loads from a template: upsert by its key, or append without one."""
    return UPSERT if primary_key else APPEND


# Columns an extract made through the seed-001 face adds to every load of its data table: the
# account read and when the run loaded the rows (the vendor's system columns).
SYSTEM_COLUMNS = (
    ColumnInfo("account_id", "string"),
    ColumnInfo("account_name", "string"),
    ColumnInfo("__insert_date", "timestamptz"),
)


def system_column_clash(fields: list[str]) -> str | None:
    """Why the system columns cannot be added to rows with ``fields``, or None."""
    clash = [c.name for c in SYSTEM_COLUMNS if c.name in fields]
    if not clash:
        return None
    return (
        f"the extracted fields include {', '.join(map(repr, clash))}, which the data table's "
        "system columns (account_id, account_name, __insert_date) would overwrite"
    )


# Warehouses whose column names are case-insensitive: SQLite folds ASCII letters, so "id" and
# "ID" are one column there (PostgreSQL keeps quoted names apart).
_FOLDS_CASE = frozenset({"sqlite"})
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def folds_case(warehouse: str) -> bool:
    """Whether a ``warehouse`` (its backend: ``sqlite``, ``postgresql``) holds column names
    differing only in letter case as one column."""
    return warehouse in _FOLDS_CASE


def case_clash(names: Iterable[str], warehouse: str) -> str | None:
    """Why a data table in a ``warehouse`` (its backend: ``sqlite``, ``postgresql``) cannot
    hold columns ``names`` — the first two that differ only in ASCII letter case, as SQLite
    compares column names — or None. A name given twice is one column (a table's existing
    column and the same one loaded again)."""
    if not folds_case(warehouse):
        return None
    seen: dict[str, str] = {}
    for name in names:
        first = seen.setdefault(name.translate(_ASCII_LOWER), name)
        if first != name:
            return (
                f"columns {first!r} and {name!r} differ only in letter case, which a data table"
                " cannot hold apart in a SQLite warehouse (SQLite's column names are"
                " case-insensitive): leave one out with fields, or use a PostgreSQL warehouse"
                " (EGRESS_WAREHOUSE_URL)"
            )
    return None


# The hidden row id of a data table without a primary key (keyset paging of its rows and
# exports, docs/architecture.md), left out of what they deliver.
ROW_ID_COLUMN = "_egress_id"


def reserved_column(names: Iterable[str], warehouse: str) -> str | None:
    """Why a data table in a ``warehouse`` cannot load a column of ``names``: one named as its
    hidden row id (``_egress_id``; in any letter case on a warehouse that folds it), or None.
    A key-less table has that column already, and any table's rows and exports leave it
    out."""
    folded = folds_case(warehouse)
    for name in names:
        if name == ROW_ID_COLUMN or (folded and name.translate(_ASCII_LOWER) == ROW_ID_COLUMN):
            return (
                f"column {name!r} cannot be loaded into a data table: {ROW_ID_COLUMN!r} is the"
                " name of a data table's hidden row id (its rows and exports leave it out)"
                + (", in any letter case in a SQLite warehouse" if name != ROW_ID_COLUMN else "")
                + "; leave it out with fields, or rename it in the source (e.g. a SQL template's"
                " AS)"
            )
    return None


def physical_name(workspace_id: str, name: str) -> str:
    """Warehouse table of a workspace's data table: distinct per workspace, a valid identifier."""
    return f"dt_{workspace_id.replace('-', '')[:12]}_{name}"[:63]
