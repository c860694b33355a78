"""Triggering, re-running, cancelling executions, and finding their files."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from egress.db.audit import AuditHook
from egress.db.configurations import ConfigurationRecord, ConfigurationRepo
from egress.db.connections import ConnectionRepo
from egress.db.execution_cache import DetailsCache
from egress.db.executions import ExecutionRecord as ExecutionRecord
from egress.db.executions import ExecutionRepo, NewExecution
from egress.db.executions import ExecutionSummary as ExecutionSummary
from egress.db.executions import FileRecord as FileRecord
from egress.db.executions import RunRecord as RunRecord
from egress.db.paging import Page
from egress.db.templates import TemplateRecord, TemplateRepo
from egress.db.transitions import RequestTicket
from egress.domain import audit as a
from egress.domain.audit import AuditObject
from egress.domain.clock import Clock
from egress.domain.configuration import trigger_blocker
from egress.domain.errors import Conflict, EgressError, Invalid, NotFound
from egress.domain.identity import SYSTEM, Principal, Subject
from egress.domain.incremental import lag_seconds
from egress.domain.options import date_range, selection
from egress.domain.paging import PageRequest
from egress.domain.plan import KeySelection
from egress.domain.schedules import Slot, SlotTaken, window_in_days
from egress.domain.spec import ConnectionRef, ExecutionSpec, RunOptions
from egress.domain.split import ALL
from egress.domain.status import TERMINAL, RunStatus
from egress.query.where import parse_where
from egress.services.audit import AuditService
from egress.services.limits import RateLimits
from egress.services.links import RUN_FILE, SignedLinks
from egress.worker.wakeup import Wakeup


@dataclass(frozen=True)
class SlotTrigger:
    """A slot the scheduler fires: a schedule's or a backfill window's."""

    workspace_id: str
    cfg_id: str
    options: dict[str, Any]
    kind: str  # schedule | backfill
    slot: Slot


def _by_workspace(slots: list[SlotTrigger]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, t in enumerate(slots):
        groups[t.workspace_id].append(i)
    return groups


def _request_hash(options: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True, default=str).encode()).hexdigest()


def resolve_options(
    cfg: ConfigurationRecord, template: TemplateRecord, body: dict[str, Any], max_rows: int
) -> RunOptions:
    """The trigger's options over the configuration's defaults, checked and normalised: this
    is what the execution freezes and every re-run reuses."""
    date_from = body.get("dateFrom", cfg.date_from)
    date_to = body.get("dateTo", cfg.date_to)
    to_exclusive = bool(body.get("dateToExclusive"))
    own_where = body.get("whereClause")
    where = narrowed_filter(cfg.filter, own_where)
    only_new = bool(body.get("extractOnlyNew", cfg.extract_only_new))
    lag = lag_seconds(body.get("incrementalLag", cfg.incremental_lag), ("body", "incremental_lag"))
    date_range(template.date_field, date_from, date_to, to_exclusive)
    if where is not None:
        parse_where(where, template.fields)
    chosen = selection(
        body.get("rows"), body.get("selectAll"), template.fields, template.primary_key, max_rows
    )
    if only_new and template.cursor_field is None:
        raise Invalid.at(
            ("body", "extract_only_new"),
            "the template has no cursorField, so it cannot extract only new records",
        )
    narrowed_by: tuple[str, ...] = ()
    if only_new:
        narrowed_by = trigger_narrowing(
            cfg, date_from, date_to, to_exclusive, own_where, chosen is not None
        )
    return RunOptions(
        date_from=date_from,
        date_to=date_to,
        where_clause=where,
        rows=KeySelection(*chosen) if chosen else None,
        select_all=chosen is None,
        extract_only_new=only_new,
        incremental_lag=lag,
        date_to_exclusive=to_exclusive,
        narrowed_by=narrowed_by,
    )


def with_fields(spec: ExecutionSpec, fields: list[str]) -> ExecutionSpec:
    """``spec`` reading only ``fields`` (seed 002's run from one column). An incremental run
    of fewer fields than its configuration reads keeps the watermark, as one narrowed by its
    rows does: before 2026-12-04 it moved it, so the next whole-record incremental run skipped
    the records it had taken (a data table held them with only that column)."""
    read = spec.configuration.fields or [f.name for f in spec.template.fields]
    options = spec.options
    if options.extract_only_new and set(fields) < set(read):
        options = replace(options, narrowed_by=(*options.narrowed_by, "elementId"))
    return replace(spec, configuration=replace(spec.configuration, fields=fields), options=options)


def narrowed_filter(configured: str | None, own: str | None) -> str | None:
    """The run's whereClause: the configuration's filter AND the trigger's own. A trigger
    narrows what its configuration takes, never widens it: before 2026-12-04 its whereClause
    replaced the filter (``null`` dropped it), so rows the filter keeps out reached files and
    the configuration's data table."""
    if own is None or own == configured:
        return configured
    return own if configured is None else f"({configured}) AND ({own})"


def trigger_narrowing(
    cfg: ConfigurationRecord,
    date_from: str | None,
    date_to: str | None,
    to_exclusive: bool,
    where: str | None,
    rows: bool,
) -> tuple[str, ...]:
    """The options by which an incremental trigger reads fewer records than its configuration
    would (wire names): its own dateFrom, dateTo (or dateToExclusive), whereClause, or rows.

    Such a run takes only part of its window (watermark, mark], so it must not move the
    watermark past the rest: it runs and keeps the watermark, with a run warning (README
    "Run options"). The configuration's own filter and dates narrow every run alike: records
    they leave out are never wanted, so the watermark moves past them as before. A trigger
    that drops a date (``null``) reads more, not fewer; its whereClause (``where``, its own)
    only adds to the configuration's filter (``narrowed_filter``)."""
    narrowed = [
        ("dateFrom", date_from is not None and date_from != cfg.date_from),
        ("dateTo", date_to is not None and (date_to != cfg.date_to or to_exclusive)),
        ("whereClause", where is not None and where != cfg.filter),
        ("rows", rows),
    ]
    return tuple(name for name, narrows in narrowed if narrows)


class ExecutionService:
    """Executions of a configuration: what the user side of the run queue offers."""

    def __init__(
        self,
        configurations: ConfigurationRepo,
        templates: TemplateRepo,
        connections: ConnectionRepo,
        executions: ExecutionRepo,
        wakeup: Wakeup,
        clock: Clock,
        max_selected_rows: int,
        audit: AuditService,
        limits: RateLimits,
        links: SignedLinks,
        details: DetailsCache,
    ) -> None:
        self._configurations = configurations
        self._templates = templates
        self._connections = connections
        self._executions = executions
        self._wakeup = wakeup
        self._clock = clock
        self._max_selected_rows = max_selected_rows
        self._audit = audit
        self._limits = limits
        self._links = links
        self._details = details

    def _hook(
        self, action: str, workspace_id: str, cfg_id: str, by: Principal | None, **detail: Any
    ) -> AuditHook:
        """An execution change's entry, written in the change's transaction."""
        return self._audit.hook(
            action,
            "execution",
            by=by,
            workspace_id=workspace_id,
            detail={"configurationId": cfg_id, **detail},
        )

    def _record(
        self,
        action: str,
        execution: ExecutionRecord,
        by: Principal | None,
        detail: dict[str, Any],
        actor: Subject | None = None,
        source_address: str | None = None,
    ) -> None:
        self._audit.record(
            action,
            AuditObject("execution", execution.id),
            by=by,
            workspace_id=execution.workspace_id,
            actor=actor,
            source_address=source_address,
            detail={"configurationId": execution.configuration_id, **detail},
        )

    def _freeze(
        self,
        workspace_id: str,
        cfg: ConfigurationRecord,
        options: dict[str, Any],
        now: datetime,
        parents: dict[str, Any],
        scheduled: bool = False,
    ) -> ExecutionSpec:
        """The configuration and the trigger's options frozen into a spec, or why it cannot
        run now. ``parents`` caches the templates and connections a batch shares;
        ``scheduled``: a schedule's window, taken in whole days on a dateField of dates."""
        blocker = trigger_blocker(cfg.status, cfg.start_date, cfg.end_date, now)
        if blocker:
            raise Conflict(blocker)
        template: TemplateRecord = parents.get(cfg.template_id) or self._templates.get(
            workspace_id, cfg.template_id
        )
        connection = parents.get(template.connection_id) or self._connections.get(
            workspace_id, template.connection_id
        )
        parents[cfg.template_id], parents[template.connection_id] = template, connection
        if scheduled and any(
            f.name == template.date_field and f.type == "date" for f in template.fields
        ):
            options = window_in_days(options)
        return ExecutionSpec(
            configuration=cfg.snapshot(),
            template=template.snapshot(),
            connection=ConnectionRef(connection.id, connection.type),
            options=resolve_options(cfg, template, options, self._max_selected_rows),
        )

    def trigger(
        self,
        workspace_id: str,
        cfg_id: str,
        options: dict[str, Any],
        trigger_kind: str = "api",
        idempotency_key: str | None = None,
        by: Principal | None = None,
        fields: list[str] | None = None,
        request: RequestTicket | None = None,
    ) -> tuple[ExecutionRecord, bool]:
        """Freeze the configuration and options into a new execution; its run 1 is queued.

        ``by``: the caller (its actor becomes ``triggeredBy``); None for what Egress starts
        itself, recorded as the system. ``fields``: this execution reads only these (seed 002's
        run from one column); ``request``: run 1 is pollable as it."""
        now = self._clock()
        cfg = self._configurations.get(workspace_id, cfg_id, details=False)
        spec = self._freeze(workspace_id, cfg, options, now, {})
        if fields is not None:
            spec = with_fields(spec, fields)
        if by is not None:  # a valid trigger spends one of the caller's (a refused one none)
            self._limits.trigger(by)
        execution, created = self._executions.create(
            workspace_id,
            cfg_id,
            spec,
            trigger_kind,
            now,
            idempotency_key=idempotency_key,
            request_hash=_request_hash(options) if idempotency_key else None,
            triggered_by=by.actor if by else SYSTEM,
            request=request,
            audit=self._hook(a.EXECUTION_TRIGGER, workspace_id, cfg_id, by, trigger=trigger_kind),
        )
        if created:
            self._wakeup.notify()
        return execution, created

    def fire(self, slots: list[SlotTrigger]) -> list[str | EgressError | None]:
        """Fire what the scheduler found due, as the system, each as a trigger would (same
        spec, queueing and audit) but a workspace's slots in one transaction: for each, the
        new execution's id, None when another scheduler fired it first, or why it cannot
        run."""
        now = self._clock()
        out: list[str | EgressError | None] = [None] * len(slots)
        batches: dict[str, list[tuple[int, NewExecution]]] = defaultdict(list)
        parents: dict[str, Any] = {}
        for ws, group in _by_workspace(slots).items():
            cfgs = self._configurations.get_many(ws, sorted({slots[i].cfg_id for i in group}))
            for i in group:
                t = slots[i]
                try:
                    cfg = cfgs.get(t.cfg_id)
                    if cfg is None:
                        raise NotFound(f"extraction configuration {t.cfg_id} not found")
                    spec = self._freeze(ws, cfg, t.options, now, parents, t.kind == "schedule")
                except EgressError as exc:
                    out[i] = exc
                    continue
                audit = self._hook(a.EXECUTION_TRIGGER, ws, t.cfg_id, None, trigger=t.kind)
                batches[ws].append(
                    (i, NewExecution(t.cfg_id, spec, t.kind, SYSTEM, t.slot, audit=audit))
                )
        for ws, batch in batches.items():
            ids = self._executions.create_many(ws, [n for _, n in batch], now)
            for (i, new), created in zip(batch, ids or [None] * len(batch), strict=True):
                out[i] = created if ids is not None else self._fire_alone(ws, new, now)
        if any(isinstance(o, str) for o in out):
            self._wakeup.notify()
        return out

    def _fire_alone(
        self, workspace_id: str, new: NewExecution, now: datetime
    ) -> str | EgressError | None:
        """A slot of a batch a unique key refused: alone, to learn which one was taken."""
        try:
            execution, _ = self._executions.create(
                workspace_id,
                new.configuration_id,
                new.spec,
                new.trigger,
                now,
                slot=new.slot,
                audit=new.audit,
            )
        except SlotTaken:
            return None
        except EgressError as exc:
            return exc
        return execution.id

    def get(self, workspace_id: str, cfg_id: str, execution_id: str) -> ExecutionRecord:
        return self._details.get(self._executions.get, workspace_id, cfg_id, execution_id)

    def remembered(
        self, workspace_id: str, cfg_id: str, execution_id: str
    ) -> ExecutionRecord | None:
        """``get``'s answer if the details cache holds it current, without a database read
        (None: call ``get``)."""
        return self._details.cached(workspace_id, cfg_id, execution_id)

    def list_page(
        self, workspace_id: str, cfg_id: str, page: PageRequest
    ) -> Page[ExecutionSummary]:
        self._configurations.get(workspace_id, cfg_id, details=False)  # 404 for another's
        return self._executions.list_page(workspace_id, cfg_id, page)

    def rerun(
        self,
        workspace_id: str,
        cfg_id: str,
        execution_id: str,
        idempotency_key: str | None = None,
        by: Principal | None = None,
    ) -> ExecutionRecord:
        self._executions.get(workspace_id, cfg_id, execution_id)
        execution, created = self._executions.rerun(
            workspace_id,
            cfg_id,
            execution_id,
            self._clock(),
            idempotency_key,
            self._hook(a.EXECUTION_RERUN, workspace_id, cfg_id, by),
        )
        if created:
            self._wakeup.notify()
        return execution

    def cancel(
        self, workspace_id: str, cfg_id: str, execution_id: str, by: Principal | None = None
    ) -> ExecutionRecord:
        execution = self._executions.cancel(
            workspace_id,
            cfg_id,
            execution_id,
            self._clock(),
            self._hook(a.EXECUTION_CANCEL, workspace_id, cfg_id, by),
        )
        self._wakeup.notify()  # a cancelled PENDING run may have released a held one
        return execution

    def _downloaded(
        self,
        execution: ExecutionRecord,
        record: RunRecord,
        f: FileRecord | None,
        by: Principal | None,
        link: Subject | None = None,
        source_address: str | None = None,
    ) -> None:
        """A file (``f``), or the zip of a split run's parts (None), is being served."""
        detail: dict[str, Any] = {"run": record.run_number}
        if f is not None:
            detail.update(subExtractId=f.sub_extract_id, file=f.file_name)
        if link is not None:
            detail["via"] = a.SIGNED_LINK
        action = a.FILE_DOWNLOAD if f is not None else a.ZIP_DOWNLOAD
        self._record(action, execution, by, detail, link, source_address)

    def download(
        self,
        workspace_id: str,
        cfg_id: str,
        execution_id: str,
        run: int | None,
        by: Principal | None = None,
    ) -> tuple[ExecutionRecord, RunRecord, FileRecord | None]:
        """What a run's download serves: its file, or None for the zip of a split run's parts."""
        execution = self._executions.get(workspace_id, cfg_id, execution_id)
        record = run_with_files(execution, run)
        f = None if is_split(execution) else record.files[0]
        self._downloaded(execution, record, f, by)
        return execution, record, f

    def signed_download(
        self, token: str, source_address: str | None
    ) -> tuple[ExecutionRecord, RunRecord, FileRecord | None]:
        """What a signed link serves (as ``download`` / ``sub_extract_file`` for its ids);
        Forbidden (403) for a tampered or expired link."""
        target = self._links.open(RUN_FILE, token)
        cfg_id, execution_id, run, sub_extract_id = target.ids
        execution = self._executions.get(target.workspace_id, cfg_id, execution_id)
        f: FileRecord | None
        if sub_extract_id:
            record, f = self._file_of(execution, sub_extract_id, int(run))
        else:
            record = run_with_files(execution, int(run))
            f = None if is_split(execution) else record.files[0]
        self._downloaded(execution, record, f, None, target.issued_to, source_address)
        return execution, record, f

    def sub_extract(
        self,
        workspace_id: str,
        cfg_id: str,
        execution_id: str,
        sub_extract_id: str,
        run: int | None,
    ) -> tuple[ExecutionRecord, RunRecord, FileRecord | None]:
        execution = self._executions.get(workspace_id, cfg_id, execution_id)
        return (execution, *sub_extract(execution, sub_extract_id, run))

    def sub_extract_file(
        self,
        workspace_id: str,
        cfg_id: str,
        execution_id: str,
        sub_extract_id: str,
        run: int | None,
        by: Principal | None = None,
    ) -> FileRecord:
        """The file of a part to download: of run ``run``, or of the latest run with files."""
        execution = self._executions.get(workspace_id, cfg_id, execution_id)
        record, f = self._file_of(execution, sub_extract_id, run)
        self._downloaded(execution, record, f, by)
        return f

    def _file_of(
        self, execution: ExecutionRecord, sub_extract_id: str, run: int | None
    ) -> tuple[RunRecord, FileRecord]:
        if run is None:
            run = run_with_files(execution, None).run_number
        record, f = sub_extract(execution, sub_extract_id, run)
        if f is None:
            run_with_files(execution, record.run_number)  # raises the precise 404/409
            raise AssertionError("unreachable")  # pragma: no cover
        return record, f


def is_split(execution: ExecutionRecord) -> bool:
    return execution.spec.split


def run_with_files(execution: ExecutionRecord, run: int | None) -> RunRecord:
    """Run ``run``, or the latest run that has files; 404 when there is none to download."""
    if not execution.spec.configuration.to_storage:
        raise Conflict("only extractions delivered to storage produce a downloadable file")
    if run is not None:
        record = execution.run(run)
        if record is None:
            raise NotFound(f"execution {execution.id} has no run {run}")
        if not record.files:
            raise NotFound(_no_file(run, record.status))
        return record
    for record in reversed(execution.runs):
        if record.files:
            return record
    raise NotFound("no run of this execution has produced a file yet")


def sub_extract(
    execution: ExecutionRecord, sub_extract_id: str, run: int | None
) -> tuple[RunRecord, FileRecord | None]:
    """A part of run ``run`` (default latest); ``all`` is the whole of an unsplit run."""
    record = execution.latest if run is None else execution.run(run)
    if record is None:
        raise NotFound(f"execution {execution.id} has no run {run}")
    found = next((f for f in record.files if f.sub_extract_id == sub_extract_id), None)
    if found is not None:
        return record, found
    if sub_extract_id == ALL and not is_split(execution):
        return record, None
    if record.status in TERMINAL:
        raise NotFound(f"run {record.run_number} has no sub-extract {sub_extract_id!r}")
    raise NotFound(
        f"sub-extract {sub_extract_id!r} is not known yet: run {record.run_number} is "
        f"{record.status.value}, and parts appear when it completes"
    )


def _no_file(run: int, status: RunStatus) -> str:
    if status is RunStatus.COMPLETED_NO_DATA:
        return f"run {run} matched no records, so it has no file"
    return f"run {run} has no file (status {status.value})"
