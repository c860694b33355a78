"""Extraction configurations: template + fields + output format + destination + dates."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError

from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.schedules import ScheduleRecord, load_schedules, replace_schedules
from egress.db.sync_state import BackfillProgress, SyncFacts, backfill_state, sync_facts
from egress.db.tables import (
    executions,
    extraction_configurations,
    run_events,
    run_files,
    runs,
)
from egress.db.tables import schedules as schedule_rows
from egress.domain.clock import new_id
from egress.domain.errors import Conflict, NotFound
from egress.domain.paging import PageRequest
from egress.domain.spec import ConfigurationSnapshot
from egress.domain.status import ACTIVE, ConfigStatus, RunStatus

T = extraction_configurations


@dataclass(frozen=True)
class ConfigurationRecord:
    id: str
    workspace_id: str
    name: str
    template_id: str
    fields: list[str] | None
    format: str
    compression: str
    destination: dict[str, Any]
    file_name_pattern: str | None
    split_by: str | None
    filter: str | None
    extract_only_new: bool
    incremental_lag: float | None
    date_from: str | None
    date_to: str | None
    watermark: Any
    start_date: datetime | None
    end_date: datetime | None
    status: ConfigStatus
    version: int
    created_at: datetime
    updated_at: datetime
    schedules_limit: int | None = None  # None: EGRESS_SCHEDULES_LIMIT
    sync_historical_data: str | None = None  # the backfill's first day
    backfill_window: str = "month"
    backfill_to: str | None = None  # the backfill's end (exclusive): the day it was set
    paused: bool = False
    schedules: list[ScheduleRecord] = field(default_factory=list)
    sync: SyncFacts = field(default_factory=SyncFacts)
    backfill: BackfillProgress | None = None

    def snapshot(self) -> ConfigurationSnapshot:
        """The frozen form stored on every execution."""
        return ConfigurationSnapshot(
            id=self.id,
            name=self.name,
            version=self.version,
            fields=self.fields,
            format=self.format,
            compression=self.compression,
            destination=self.destination,
            file_name_pattern=self.file_name_pattern,
            split_by=self.split_by,
        )


def _record(
    row: Row[Any],
    schedules: list[ScheduleRecord] | None = None,
    sync: SyncFacts | None = None,
    backfill: BackfillProgress | None = None,
) -> ConfigurationRecord:
    return ConfigurationRecord(
        id=row.id,
        workspace_id=row.workspace_id,
        name=row.name,
        template_id=row.template_id,
        fields=list(row.fields) if row.fields is not None else None,
        format=row.format,
        compression=row.compression,
        destination=dict(row.destination),
        file_name_pattern=row.file_name_pattern,
        split_by=row.split_by,
        filter=row.filter,
        extract_only_new=bool(row.extract_only_new),
        incremental_lag=row.incremental_lag,
        date_from=row.date_from,
        date_to=row.date_to,
        watermark=row.watermark,
        start_date=row.start_date,
        end_date=row.end_date,
        status=ConfigStatus(row.status),
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        schedules_limit=row.schedules_limit,
        sync_historical_data=row.sync_historical_data,
        backfill_window=row.backfill_window,
        backfill_to=row.backfill_to,
        paused=bool(row.paused),
        schedules=schedules or [],
        sync=sync or SyncFacts(),
        backfill=backfill,
    )


def _records(conn: Connection, rows: list[Row[Any]]) -> list[ConfigurationRecord]:
    """Records with their schedules, sync facts and backfill progress, read in a few queries."""
    ids = [r.id for r in rows]
    schedules = load_schedules(conn, ids)
    facts = sync_facts(conn, ids)
    out = []
    for r in rows:
        progress = None
        if r.sync_historical_data is not None and r.backfill_to is not None:
            progress = backfill_state(
                conn, r.id, r.sync_historical_data, r.backfill_to, r.backfill_window
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
            return _records(conn, [row])[0] if details else _record(row)

    def list_page(
        self, workspace_id: str, status: ConfigStatus | None, page: PageRequest
    ) -> Page[ConfigurationRecord]:
        query = sa.select(T).where(T.c.workspace_id == workspace_id)
        if status is not None:
            query = query.where(T.c.status == status.value)
        query = query.order_by(T.c.created_at.desc(), T.c.id)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
            return Page(_records(conn, list(rows)), total, page)

    def update(
        self,
        workspace_id: str,
        cfg_id: str,
        values: dict[str, Any],
        schedules: list[ScheduleRecord] | None = None,
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
        except IntegrityError as exc:
            raise _name_taken(values.get("name")) from exc
        return self.get(workspace_id, cfg_id)

    def delete(self, workspace_id: str, cfg_id: str) -> list[str]:
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
            conn.execute(runs.delete().where(runs.c.configuration_id == cfg_id))
            conn.execute(executions.delete().where(executions.c.configuration_id == cfg_id))
            conn.execute(schedule_rows.delete().where(schedule_rows.c.configuration_id == cfg_id))
            conn.execute(T.delete().where(T.c.workspace_id == workspace_id, T.c.id == cfg_id))
        return keys
