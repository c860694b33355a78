"""Rules of data tables: one table is loaded in one way, from one template.

A table created by upsert merges by its key and one created by append has none; loading it in
another mode, by another key, or from another template would merge rows by columns that do not
identify them (or fail in the warehouse). Such a load is refused when the configuration is saved
and again when a run starts, with the same message.
"""

from __future__ import annotations

from dataclasses import dataclass

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
