"""Verified, resumable downloads of a run's files (a flow, see ``flows``).

Bytes go to ``<name>.part`` beside the target, with ``<name>.part.json`` remembering which file
they belong to (its sha256) and, on a bucket, the object's ETag. A transfer that breaks — a cut
connection here, or a killed process before — resumes from the bytes already there:

- from Egress itself with ``Range`` + ``If-Range: "<sha256>"`` (the ETag Egress gives a file);
  a file that changed meanwhile comes back whole (200) and replaces the partial copy;
- from a bucket (Egress answers ``307`` to a presigned URL): a fresh redirect is asked of Egress
  each time (the last one may have expired), and the bucket is sent ``Range`` + ``If-Match:
  <its ETag>``, because S3 ignores ``If-Range``; a ``412`` starts the file over. The bucket's
  ETag is no sha256, and the Egress token is never sent there.

Only bytes that hash to the run's ``sha256`` are renamed into place; a split run is fetched part
by part (each verified), never as the zip built on the fly, which has no hash."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from egress.client.errors import ChecksumMismatch, NoFile, api_error
from egress.client.flows import Flow, Send, Sleep, Stream
from egress.client.models import Execution, File, Run

# (file name, bytes so far, total bytes or None)
ByteProgress = Callable[[str, int, int | None], None]
MAX_FAILURES = 5
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Target:
    url: str  # Egress's download URL of this one file
    name: str
    sha256: str
    size: int | None
    path: Path

    @property
    def part(self) -> Path:
        return self.path.with_name(self.path.name + ".part")

    @property
    def state(self) -> Path:
        return self.path.with_name(self.path.name + ".part.json")


def pick_run(execution: Execution, run: int | None) -> Run:
    if run is None:
        return execution.latest
    for r in execution.runs:
        if r.run == run:
            return r
    raise NoFile(f"execution {execution.id} has no run {run}")


def targets(
    execution: Execution, run: int | None, sub_extract: str | None, to: Path | None
) -> list[Target]:
    """The files to fetch and where each goes: into ``to`` when it is a directory (or for a
    split run's parts), else to ``to`` itself; without ``to``, the current directory."""
    r = pick_run(execution, run)
    files: list[File]
    if sub_extract is not None:
        found = next((s for s in r.sub_extracts if s.id == sub_extract), None)
        if found is None:
            raise NoFile(
                f"run {r.run} of execution {execution.id} has no sub-extract {sub_extract}"
            )
        files = [found.file] if found.file else []
    elif r.split:
        files = [s.file for s in r.sub_extracts if s.file is not None]
    else:
        files = [r.file] if r.file else []
    if not files:
        raise NoFile(f"run {r.run} of execution {execution.id} has no file ({r.status})")
    into_dir = to is None or to.is_dir() or len(files) > 1 or (r.split and sub_extract is None)
    out: list[Target] = []
    for f in files:
        assert f.sha256 is not None  # a stored file always has one (only the zip has none)
        path = ((to or Path.cwd()) / Path(f.name).name) if into_dir else Path(to or ".")
        out.append(Target(f.download_url, f.name, f.sha256, f.size_bytes, path))
    return out


class _PartFile:
    """The sink a response streams into: appends after a 206, starts over after a 200."""

    def __init__(self, target: Target, have: int, on_progress: ByteProgress | None) -> None:
        self.target, self.have, self.on_progress = target, have, on_progress
        self.fh: IO[bytes] | None = None
        self.done = 0

    def start(self, response: httpx.Response) -> bool:
        if response.status_code == 206:
            first = response.headers.get("content-range", "").removeprefix("bytes ").split("-")[0]
            if first != str(self.have):  # not the bytes asked for: take nothing of them
                return False
            self.fh, self.done = self.target.part.open("ab"), self.have
        elif response.status_code == 200:
            _save_state(self.target, response.headers.get("etag"))
            self.fh, self.done = self.target.part.open("wb"), 0
        else:
            return False
        return True

    def write(self, chunk: bytes) -> None:
        assert self.fh is not None
        self.fh.write(chunk)
        self.done += len(chunk)
        if self.on_progress is not None:
            self.on_progress(self.target.name, self.done, self.target.size)

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None


def _save_state(target: Target, etag: str | None) -> None:
    target.state.write_text(json.dumps({"sha256": target.sha256, "etag": etag}))


def _resume_state(target: Target) -> tuple[int, str | None]:
    """Bytes already there for this very file (by its sha256) and the ETag they came with;
    anything else left over is thrown away."""
    try:
        state: dict[str, Any] = json.loads(target.state.read_text())
        if state.get("sha256") == target.sha256 and target.part.exists():
            return target.part.stat().st_size, state.get("etag")
    except (OSError, ValueError):
        pass
    _discard(target)
    return 0, None


def _discard(target: Target) -> None:
    for p in (target.part, target.state):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _range(have: int, **validator: str) -> dict[str, str]:
    if not have:
        return {}
    return {"Range": f"bytes={have}-", **validator}


def fetch(target: Target, on_progress: ByteProgress | None) -> Flow[Path]:
    """One file into place, resumed across broken transfers, verified before the rename."""
    target.path.parent.mkdir(parents=True, exist_ok=True)
    failures = 0
    while True:
        have, etag = _resume_state(target)
        if target.size is not None and have >= target.size:
            if have == target.size:
                break
            _discard(target)
            continue
        sink = _PartFile(target, have, on_progress)
        try:
            headers = _range(have, **{"If-Range": f'"{target.sha256}"'})
            response: httpx.Response = yield Stream(Send("GET", target.url, headers=headers), sink)
            if response.status_code == 307:
                if etag is None:  # no validator for the bytes there: start over
                    have = 0
                sink = _PartFile(target, have, on_progress)
                bucket = Send(
                    "GET",
                    response.headers["location"],
                    headers=_range(have, **({"If-Match": etag} if etag else {})),
                    bucket=True,
                )
                response = yield Stream(bucket, sink)
            if response.status_code in (412, 416) or (
                response.status_code == 206 and not sink.done
            ):
                _discard(target)  # the object changed, or the bytes there are not a prefix of it
                failures += 1
                if failures >= MAX_FAILURES:
                    raise api_error(response)
                continue
            if response.status_code >= 300:
                raise api_error(response)
            break
        except httpx.TransportError:
            failures += 1
            if failures >= MAX_FAILURES:
                raise
            yield Sleep(min(0.2 * 2**failures, 5.0))
    _verify(target)
    os.replace(target.part, target.path)
    _discard(target)
    return target.path


def _verify(target: Target) -> None:
    digest = hashlib.sha256()
    with target.part.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    if digest.hexdigest() != target.sha256:
        _discard(target)
        raise ChecksumMismatch(target.name, target.sha256, digest.hexdigest())


def download(targets: list[Target], on_progress: ByteProgress | None) -> Flow[list[Path]]:
    paths: list[Path] = []
    for target in targets:
        paths.append((yield from fetch(target, on_progress)))
    return paths
