"""Extraction configurations: template + fields + output format + destination + dates."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from egress.db.audit import AuditHook
from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.schedules import ScheduleRecord, load_schedules, replace_schedules
from egress.db.sync_state import BackfillProgress, SyncFacts, backfill_state, sync_facts
from egress.db.tables import (
    executions,
    extraction_configurations,
    requests,
    run_events,
    run_files,
    runs,
    templates,
)
from egress.db.tables import schedules as schedule_rows
from egress.domain.clock import new_id
from egress.domain.configuration import Configuration
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest
from egress.domain.status import ACTIVE, ConfigStatus, RunStatus

T = extraction_configurations


# The stored form is the domain's type; its fields are the table's columns of the same names.
_COLUMNS = tuple(f.name for f in fields(Configuration))


@dataclass(frozen=True, kw_only=True)
class ConfigurationRecord(Configuration):
    """A stored configuration with what is read beside it: its schedules (rows of their own),
    its sync facts (from its runs) and its backfill's progress."""

    schedules: list[ScheduleRecord] = field(default_factory=list)
    sync: SyncFacts = field(default_factory=SyncFacts)
    backfill: BackfillProgress | None = None


def _record(
    row: Row[Any],
    schedules: list[ScheduleRecord] | None = None,
    sync: SyncFacts | None = None,
    backfill: BackfillProgress | None = None,
) -> ConfigurationRecord:
    values = {name: getattr(row, name) for name in _COLUMNS}
    return ConfigurationRecord(
        **values
        | {
            "fields": list(row.fields) if row.fields is not None else None,
            "destination": dict(row.destination),
            "extract_only_new": bool(row.extract_only_new),
            "status": ConfigStatus(row.status),
            "system_columns": bool(row.system_columns),  # NULL: false
            "paused": bool(row.paused),
            "parallelism": row.parallelism or 1,  # NULL: 1
        },
        schedules=schedules or [],
        sync=sync or SyncFacts(),
        backfill=backfill,
    )


def _records(conn: Connection, rows: list[Row[Any]], today: date) -> list[ConfigurationRecord]:
    """Records with their schedules, sync facts and backfill progress (up to ``today``), read
    in a few queries."""
    ids = [r.id for r in rows]
    schedules = load_schedules(conn, ids)
    facts = sync_facts(conn, ids)
    out = []
    for r in rows:
        progress = None
        if r.sync_historical_data is not None:
            progress = backfill_state(
                conn, r.id, r.sync_historical_data, today, r.backfill_window
            ).progress
        out.append(_record(r, schedules.get(r.id, []), facts.get(r.id), progress))
    return out


def _name_taken(name: object) -> Conflict:
    return Conflict(f"an extraction configuration named {name!r} already exists")


class ConfigurationRepo(Repository):
    def create(
        self,
        workspace_id: str,
        values: dict[str, Any],
        schedules: list[ScheduleRecord] | None = None,
        audit: AuditHook | None = None,
    ) -> ConfigurationRecord:
        now = self._clock()
        cfg_id = new_id()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    T.insert().values(
                        id=cfg_id,
                        workspace_id=workspace_id,
                        status=ConfigStatus.DRAFT.value,
                        version=1,
                        created_at=now,
                        updated_at=now,
                        **values,
                    )
                )
                replace_schedules(conn, workspace_id, cfg_id, schedules or [], now)
                if audit is not None:
                    audit(conn, cfg_id, {})
        except IntegrityError as exc:
            raise _name_taken(values.get("name")) from exc
        return self.get(workspace_id, cfg_id)

    def get(self, workspace_id: str, cfg_id: str, details: bool = True) -> ConfigurationRecord:
        """The configuration; without ``details`` (a trigger needs none) its schedules, sync
        facts and backfill progress are not read."""
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(T).where(T.c.workspace_id == workspace_id, T.c.id == cfg_id)
            ).one_or_none()
            if row is None:
                raise NotFound(f"extraction configuration {cfg_id} not found")
            return _records(conn, [row], self._clock().date())[0] if details else _record(row)

    def get_many(self, workspace_id: str, cfg_ids: list[str]) -> dict[str, ConfigurationRecord]:
        """Configurations by id, without details (``get``'s), in one query; missing ones absent."""
        with self._reads.connect() as conn:
            rows = conn.execute(
                sa.select(T).where(T.c.workspace_id == workspace_id, T.c.id.in_(cfg_ids))
            ).all()
        return {row.id: _record(row) for row in rows}

    def list_page(
        self,
        workspace_id: str,
        status: ConfigStatus | None,
        page: PageRequest,
        connection_id: str | None = None,
        data_table: str | None = None,
    ) -> Page[ConfigurationRecord]:
        """With ``connection_id``, those reading that connection; with ``data_table``, those
        loading the data table of that name."""
        query = sa.select(T).where(T.c.workspace_id == workspace_id)
        if status is not None:
            query = query.where(T.c.status == status.value)
        if connection_id is not None:
            reading = sa.select(templates.c.id).where(
                templates.c.workspace_id == workspace_id,
                templates.c.connection_id == connection_id,
            )
            query = query.where(T.c.template_id.in_(reading))
        if data_table is not None:
            query = query.where(T.c.destination["dataTable"].as_string() == data_table)
        query = query.order_by(T.c.created_at.desc(), T.c.id)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
            return Page(_records(conn, list(rows), self._clock().date()), total, page)

    def update(
        self,
        workspace_id: str,
        cfg_id: str,
        values: dict[str, Any],
        schedules: list[ScheduleRecord] | None = None,
        audit: AuditHook | None = None,
    ) -> ConfigurationRecord:
        """Apply changes (and, when given, make ``schedules`` its schedules) and bump the
        version; executions keep their frozen snapshot."""
        self.get(workspace_id, cfg_id, details=False)
        now = self._clock()
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    T.update()
                    .where(T.c.workspace_id == workspace_id, T.c.id == cfg_id)
                    .values(version=T.c.version + 1, updated_at=now, **values)
                )
                if schedules is not None:
                    replace_schedules(conn, workspace_id, cfg_id, schedules, now)
                if audit is not None:
                    audit(conn, cfg_id, {})
        except IntegrityError as exc:
            raise _name_taken(values.get("name")) from exc
        return self.get(workspace_id, cfg_id)

    def delete(self, workspace_id: str, cfg_id: str, audit: AuditHook | None = None) -> list[str]:
        """Delete the configuration and its history; returns the storage keys to remove (every
        run's files and manifest)."""
        self.get(workspace_id, cfg_id, details=False)
        unfinished = [s.value for s in (*ACTIVE, RunStatus.ON_HOLD)]
        with self._engine.begin() as conn:
            busy = conn.execute(
                sa.select(sa.func.count()).where(
                    runs.c.configuration_id == cfg_id, runs.c.status.in_(unfinished)
                )
            ).scalar_one()
            if busy:
                raise Conflict(
                    "the configuration has unfinished runs; wait for them or cancel them first"
                )
            run_ids = sa.select(runs.c.id).where(runs.c.configuration_id == cfg_id)
            files = sa.select(run_files.c.storage_key).where(run_files.c.run_id.in_(run_ids))
            manifests = sa.select(runs.c.manifest_key).where(
                runs.c.configuration_id == cfg_id, runs.c.manifest_key.is_not(None)
            )
            keys = list(conn.execute(files.union_all(manifests)).scalars())
            conn.execute(run_files.delete().where(run_files.c.run_id.in_(run_ids)))
            conn.execute(run_events.delete().where(run_events.c.run_id.in_(run_ids)))
            # Seed-002 runs' requests go with their runs (polling one then answers 404).
            conn.execute(requests.delete().where(requests.c.run_id.in_(run_ids)))
            conn.execute(runs.delete().where(runs.c.configuration_id == cfg_id))
            conn.execute(executions.delete().where(executions.c.configuration_id == cfg_id))
            conn.execute(schedule_rows.delete().where(schedule_rows.c.configuration_id == cfg_id))
            conn.execute(T.delete().where(T.c.workspace_id == workspace_id, T.c.id == cfg_id))
            if audit is not None:
                audit(conn, cfg_id, {})
        return keys
