"""The catalogue of data tables (their rows live in the warehouse database)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import data_tables, extraction_configurations
from egress.domain.catalog import ColumnInfo
from egress.domain.clock import new_id
from egress.domain.data_tables import APPEND, UPSERT
from egress.domain.errors import NotFound
from egress.domain.paging import PageRequest

T = data_tables


@dataclass(frozen=True)
class DataTableRecord:
    id: str
    workspace_id: str
    name: str
    physical_name: str
    fields: list[ColumnInfo]
    primary_key: list[str]  # [] for a table loaded by append
    template_id: str | None
    row_count: int
    created_at: datetime
    updated_at: datetime

    @property
    def mode(self) -> str:
        """Upsert tables merge by their key; append tables have none."""
        return UPSERT if self.primary_key else APPEND


def _record(row: Row[Any]) -> DataTableRecord:
    return DataTableRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        physical_name=row.physical_name,
        fields=[ColumnInfo(**f) for f in row.fields],
        primary_key=list(row.primary_key),
        template_id=row.template_id,
        row_count=row.row_count,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class DataTableRepo(Repository):
    def find(self, workspace_id: str, name: str) -> DataTableRecord | None:
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(T).where(T.c.workspace_id == workspace_id, T.c.name == name)
            ).one_or_none()
        return _record(row) if row else None

    def ensure(
        self,
        workspace_id: str,
        name: str,
        physical_name: str,
        fields: list[ColumnInfo],
        primary_key: list[str],
        template_id: str,
    ) -> DataTableRecord:
        found = self.find(workspace_id, name)
        if found is not None:
            return found
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    T.insert().values(
                        id=new_id(),
                        workspace_id=workspace_id,
                        name=name,
                        physical_name=physical_name,
                        fields=[f.as_dict() for f in fields],
                        primary_key=primary_key,
                        template_id=template_id,
                        row_count=0,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError:
            pass  # created concurrently: read it below
        found = self.find(workspace_id, name)
        assert found is not None
        return found

    def loaded(
        self,
        table_id: str,
        fields: list[ColumnInfo],
        row_count: int,
        template_id: str,
        columns: Callable[[], list[str] | None],
        recount: Callable[[], int],
    ) -> None:
        """After a load: the table's schema and size; a table that had no template recorded
        is bound to the one it was just loaded from.

        The recorded fields are the warehouse table's columns as committed (``columns``:
        None when it has none yet), typed by this load's ``fields`` or else as recorded so
        far. They are read while the catalogue row is locked, so two loads that commit
        different new columns each record the other's too, whichever records last (each
        wrote "what it read before its load | its own" before 2026-12-04, and the later
        write dropped the other's column); columns only a failed first attempt recorded
        (it made no table) are not kept.

        ``row_count`` is the table's count taken once this load committed. A data table only
        grows (an upsert never deletes): a count below the one recorded was taken before
        another load committed (or rows were deleted in the warehouse by hand), and the table
        is counted again (``recount``) under the lock. So the count of the last commit stays,
        whichever load records last (before 2026-12-04 the later record's count was kept,
        which could be one taken before the other load committed)."""
        with self._engine.begin() as conn:
            # FOR UPDATE on PostgreSQL; a SQLite write transaction holds the lock already.
            current = conn.execute(
                sa.select(T.c.fields, T.c.row_count).where(T.c.id == table_id).with_for_update()
            ).one_or_none()
            if current is None:  # deleted meanwhile
                return
            present = columns()
            if present is None:
                recorded = fields
            else:
                known = {f["name"]: ColumnInfo(**f) for f in current.fields}
                known |= {f.name: f for f in fields}
                recorded = [known[name] for name in present if name in known]
            conn.execute(
                T.update()
                .where(T.c.id == table_id)
                .values(
                    fields=[f.as_dict() for f in recorded],
                    row_count=row_count if row_count >= current.row_count else recount(),
                    template_id=sa.func.coalesce(T.c.template_id, template_id),
                    updated_at=self._clock(),
                )
            )

    def get(self, workspace_id: str, table_id: str) -> DataTableRecord:
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(T).where(T.c.workspace_id == workspace_id, T.c.id == table_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"data table {table_id} not found")
        return _record(row)

    def list_page(self, workspace_id: str, page: PageRequest) -> Page[DataTableRecord]:
        query = sa.select(T).where(T.c.workspace_id == workspace_id).order_by(T.c.name)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_record(r) for r in rows], total, page)

    def loading_configurations(self, workspace_id: str, name: str) -> list[dict[str, str]]:
        cfg = extraction_configurations
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(cfg.c.id, cfg.c.name, cfg.c.template_id, cfg.c.destination)
                .where(cfg.c.workspace_id == workspace_id)
                .order_by(cfg.c.name)
            ).all()
        return [
            {
                "id": r.id,
                "name": r.name,
                "mode": r.destination.get("mode", "append"),
                "templateId": r.template_id,
            }
            for r in rows
            if r.destination.get("type") == "dataTable" and r.destination.get("dataTable") == name
        ]
