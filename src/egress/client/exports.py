"""``export_all``: a whole object through the bulk-export API (seed 003), job after job (a
flow, see ``flows``).

Each job exports at most the server's job size after a cursor; its file is saved as
``part-NNNNN.<format>`` in the target directory, and ``index.json`` there records every
completed job (request id, file, objects, the cursor it started from and its ``nextCursor``)
and the job in progress. Run again after an interruption, it picks up the job in progress (or
starts again from the last completed cursor), so no object is fetched twice and none is lost.
``429`` (one active job per user) is waited out as its ``Retry-After`` says."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx
from pydantic import Field

from egress.client.errors import EgressError, ExportFailed, RateLimited, api_error
from egress.client.flows import FIRST_POLL_S, MAX_POLL_S, Flow, Send, Sleep, Stream, parsed
from egress.client.models import Model

API = "/api/v1"
INDEX = "index.json"
# A wait after 429 when the answer said nothing: the server's own hint is 5 s.
DEFAULT_RETRY_AFTER_S = 5.0


class ExportObject(Model):
    """An object the bulk-export API can export: a data table, or a template ``t-<id>``."""

    name: str
    kind: str
    title: str
    key: list[str]
    approximate_count: int | None


class ExportJob(Model):
    """One completed job: its file (in the index's directory) and the cursors around it."""

    request_id: str
    file: str
    total: int
    cursor: str | None
    next_cursor: str | None


class ActiveJob(Model):
    request_id: str
    cursor: str | None


class ExportIndex(Model):
    """``index.json``: what has been exported so far; ``complete`` once ``nextCursor`` was
    null."""

    object: str
    format: str
    fields: list[str] | None
    csv_dialect: str | None = None
    jobs: list[ExportJob] = Field(default_factory=list)
    active: ActiveJob | None = None
    complete: bool = False

    @property
    def total(self) -> int:
        return sum(j.total for j in self.jobs)

    @property
    def next_cursor(self) -> str | None:
        return self.jobs[-1].next_cursor if self.jobs else None


@dataclass(frozen=True)
class ExportProgress:
    """What ``export_all`` reports while it works: jobs and objects done, and the current job
    (``status``: ``Pending``, ``InProgress``, ``Completed``, or ``RateLimited`` while it waits
    for another job of the same user to finish)."""

    jobs_done: int
    objects_done: int
    request_id: str | None
    status: str
    processed: int


ExportCallback = Callable[[ExportProgress], None]


def _write_index(directory: Path, index: ExportIndex) -> None:
    """Replaced whole (write, then rename): an interruption leaves the old or the new one."""
    tmp = directory / (INDEX + ".tmp")
    tmp.write_text(index.model_dump_json(by_alias=True, indent=2), encoding="utf-8")
    os.replace(tmp, directory / INDEX)


def _read_index(
    directory: Path, object: str, format: str, fields: list[str] | None, csv_dialect: str | None
) -> ExportIndex:
    fresh = ExportIndex(object=object, format=format, fields=fields, csv_dialect=csv_dialect)
    try:
        text = (directory / INDEX).read_text(encoding="utf-8")
    except FileNotFoundError:
        return fresh
    index = ExportIndex.model_validate_json(text)
    if (index.object, index.format, index.fields, index.csv_dialect) != (
        object,
        format,
        fields,
        csv_dialect,
    ):
        dialect = f", csvDialect {index.csv_dialect}" if index.csv_dialect else ""
        raise EgressError(
            f"{directory} holds an export of {index.object!r} as {index.format} "
            f"(fields {index.fields}{dialect}): use another directory"
        )
    return index


class _FileSink:
    """Streams a job's file to ``<name>.part``; renamed into place once whole."""

    def __init__(self, part: Path) -> None:
        self.part = part
        self.fh: IO[bytes] | None = None

    def start(self, response: httpx.Response) -> bool:
        if response.status_code != 200:
            return False
        self.fh = self.part.open("wb")
        return True

    def write(self, chunk: bytes) -> None:
        assert self.fh is not None
        self.fh.write(chunk)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _fetch(url: str, path: Path) -> Flow[None]:
    """The job's signed ``fileUrl`` (no token needed, so none is sent; on a bucket Egress
    answers 307 to a presigned URL)."""
    part = path.with_name(path.name + ".part")
    sink = _FileSink(part)
    response: httpx.Response = yield Stream(Send("GET", url, bucket=True), sink)
    if response.status_code == 307:
        sink = _FileSink(part)
        response = yield Stream(Send("GET", response.headers["location"], bucket=True), sink)
    if response.status_code != 200:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
        raise api_error(response)
    os.replace(part, path)


def _start(firm: str, object: str, body: dict[str, Any], report: Callable[..., None]) -> Flow[str]:
    """A new job; while another job of this user is active (429), wait as told and ask again."""
    while True:
        try:
            started: dict[str, str] = yield from parsed(
                dict[str, str], "POST", f"{API}/idm/{firm}/{object}/export", json=body
            )
            return started["requestId"]
        except RateLimited as busy:
            report(None, "RateLimited", 0)
            yield Sleep(busy.retry_after if busy.retry_after is not None else DEFAULT_RETRY_AFTER_S)


def _finished(request_id: str, report: Callable[..., None]) -> Flow[dict[str, Any]]:
    """Poll the job until Completed (its ``result``); Failed raises ``ExportFailed``."""
    delay = FIRST_POLL_S
    while True:
        body: dict[str, Any] = yield from parsed(
            dict[str, Any], "GET", f"{API}/request/{request_id}"
        )
        status = body["status"]
        if status == "Completed":
            result: dict[str, Any] = body["result"]
            return result
        if status == "Failed":
            error = body.get("error") or {}
            raise ExportFailed(request_id, error.get("message"), bool(error.get("retryable")))
        report(request_id, status, (body.get("progress") or {}).get("processed", 0))
        yield Sleep(delay)
        delay = min(delay * 1.5, MAX_POLL_S)


def workspace(firm: str | None) -> Flow[str]:
    """The firm id of the seed's paths: given, or the token's workspace."""
    if firm is not None:
        return firm
    me: dict[str, Any] = yield from parsed(dict[str, Any], "GET", f"{API}/me")
    return str(me["workspaceId"])


def objects(firm: str | None) -> Flow[list[ExportObject]]:
    firm_id = yield from workspace(firm)
    page: dict[str, list[ExportObject]] = yield from parsed(
        dict[str, list[ExportObject]], "GET", f"{API}/idm/{firm_id}/objects"
    )
    return page["data"]


def export_all(
    object: str,
    directory: Path,
    format: str,
    fields: list[str] | None,
    firm: str | None,
    on_progress: ExportCallback | None,
    jobs: int | None = None,
    csv_dialect: str | None = None,
) -> Flow[ExportIndex]:
    """``jobs``: stop after that many more jobs (None: until the last one); ``csv_dialect``:
    ``"postgres"`` for PostgreSQL's own CSV rendering (CSV from PostgreSQL only)."""
    directory.mkdir(parents=True, exist_ok=True)
    index = _read_index(directory, object, format, fields, csv_dialect)
    firm_id = yield from workspace(firm)

    def report(request_id: str | None, status: str, processed: int) -> None:
        if on_progress is not None:
            on_progress(ExportProgress(len(index.jobs), index.total, request_id, status, processed))

    stop_at = None if jobs is None else len(index.jobs) + jobs
    while not index.complete and (stop_at is None or len(index.jobs) < stop_at):
        if index.active is None:
            cursor = index.next_cursor
            body: dict[str, Any] = {
                "format": format,
                "cursor": cursor,
                "fields": fields,
                "csvDialect": csv_dialect,
            }
            request_id = yield from _start(
                firm_id, object, {k: v for k, v in body.items() if v is not None}, report
            )
            index.active = ActiveJob(request_id=request_id, cursor=cursor)
            _write_index(directory, index)
        active = index.active
        try:
            result = yield from _finished(active.request_id, report)
        except ExportFailed:
            index.active = None  # the next run starts again from the last completed cursor
            _write_index(directory, index)
            raise
        name = f"part-{len(index.jobs) + 1:05d}.{format}"
        yield from _fetch(result["fileUrl"], directory / name)
        index.jobs.append(
            ExportJob(
                request_id=active.request_id,
                file=name,
                total=result["total"],
                cursor=active.cursor,
                next_cursor=result["nextCursor"],
            )
        )
        index.active = None
        index.complete = result["nextCursor"] is None
        _write_index(directory, index)
        report(active.request_id, "Completed", result["total"])
    return index
