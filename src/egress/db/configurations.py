"""Extraction configurations: template + fields + output format + destination + dates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from egress.db.audit import AuditHook
from egress.db.engine import Repository
from egress.db.paging import Page, fetch_page
from egress.db.tables import (
    executions,
    extraction_configurations,
    run_events,
    run_files,
    runs,
)
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


def _record(row: Row[Any]) -> ConfigurationRecord:
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
    )


def _name_taken(name: object) -> Conflict:
    return Conflict(f"an extraction configuration named {name!r} already exists")


class ConfigurationRepo(Repository):
    def create(
        self, workspace_id: str, values: dict[str, Any], audit: AuditHook | None = None
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
                if audit is not None:
                    audit(conn, cfg_id, {})
        except IntegrityError as exc:
            raise _name_taken(values.get("name")) from exc
        return self.get(workspace_id, cfg_id)

    def get(self, workspace_id: str, cfg_id: str) -> ConfigurationRecord:
        with self._reads.connect() as conn:
            row = conn.execute(
                sa.select(T).where(T.c.workspace_id == workspace_id, T.c.id == cfg_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"extraction configuration {cfg_id} not found")
        return _record(row)

    def list_page(
        self, workspace_id: str, status: ConfigStatus | None, page: PageRequest
    ) -> Page[ConfigurationRecord]:
        query = sa.select(T).where(T.c.workspace_id == workspace_id)
        if status is not None:
            query = query.where(T.c.status == status.value)
        query = query.order_by(T.c.created_at.desc(), T.c.id)
        with self._reads.connect() as conn:
            rows, total = fetch_page(conn, query, page)
        return Page([_record(r) for r in rows], total, page)

    def update(
        self,
        workspace_id: str,
        cfg_id: str,
        values: dict[str, Any],
        audit: AuditHook | None = None,
    ) -> ConfigurationRecord:
        """Apply changes and bump the version; executions keep their frozen snapshot."""
        self.get(workspace_id, cfg_id)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    T.update()
                    .where(T.c.workspace_id == workspace_id, T.c.id == cfg_id)
                    .values(version=T.c.version + 1, updated_at=self._clock(), **values)
                )
                if audit is not None:
                    audit(conn, cfg_id, {})
        except IntegrityError as exc:
            raise _name_taken(values.get("name")) from exc
        return self.get(workspace_id, cfg_id)

    def delete(self, workspace_id: str, cfg_id: str, audit: AuditHook | None = None) -> list[str]:
        """Delete the configuration and its history; returns the storage keys to remove (every
        run's files and manifest)."""
        self.get(workspace_id, cfg_id)
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
            conn.execute(T.delete().where(T.c.workspace_id == workspace_id, T.c.id == cfg_id))
            if audit is not None:
                audit(conn, cfg_id, {})
        return keys
