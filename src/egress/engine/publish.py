"""Publishing a run's files (DESIGN §5, step 2): choose final names no other file holds,
record them as pending (fenced by the lease), move every file to its final key without
overwriting, then the run's manifest likewise. All or nothing: a failure removes what moved."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import orjson

from egress.db.run_queue import Leftover, RunQueue
from egress.domain.naming import manifest_name, name_candidates, storage_key, varies_per_run
from egress.engine.control import LeaseLost
from egress.engine.job import Job, RunFailure, Written
from egress.engine.leftovers import Cleanup
from egress.engine.windows import json_value
from egress.storage import DestinationExists, ObjectHeaders, Storage, tmp_key


def final_names(storage: Storage, job: Job, written: list[Written]) -> str:
    """Give every file its final name and key, all from the same candidate (the rendered
    names, else each with the execution's short id, else also the attempt), the first one
    under which no key is taken; returns the manifest's key."""
    claimed = job.claimed
    per_run = varies_per_run(job.pattern)

    def candidates(name: str) -> list[str]:
        return name_candidates(
            name, job.ext, claimed.execution_id, claimed.attempt, per_run=per_run
        )

    def key(name: str) -> str:
        return storage_key(claimed.workspace_id, job.destination, name)

    split = job.split_by is not None
    files = [candidates(job.file_name(w.value, split=split)) for w in written]
    runs = candidates(job.file_name())
    for i, base in enumerate(runs):
        names = [options[i] for options in files]
        _refuse_shared_names(job, written, names)
        keys = [key(n) for n in names] + [key(manifest_name(base))]
        if len(set(keys)) == len(keys) and not any(map(storage.exists, keys)):
            for w, name in zip(written, names, strict=True):
                w.name, w.final_key = name, key(name)
            return keys[-1]
    where = f" under {job.destination!r}" if job.destination else ""
    if not per_run:
        raise RunFailure(
            f"a file of this run already exists{where} ({runs[0]!r}): the file name pattern "
            f"{job.pattern!r} gives every run the same names; add {{executionStartUtc}}, "
            "or {executionId} and {run}"
        )
    raise RunFailure(f"every candidate file name{where} is taken ({runs[0]!r})")


def _refuse_shared_names(job: Job, written: list[Written], names: list[str]) -> None:
    """Two parts of a run under one name would be one file: the run fails, naming both values,
    not "taken" (no stored file holds it). Split labels never coincide, but a name cut to fit
    keeps only 8 hex digits of a hash of the rest: this is the last check."""
    by_name: dict[str, Written] = {}
    for w, name in zip(written, names, strict=True):
        first = by_name.setdefault(name, w)
        if first is not w:
            raise RunFailure(
                f"split by {job.split_by!r}: the values {first.value!r} and {w.value!r} both "
                f"have the file name {name!r}; nothing was published"
            )


def publish(
    storage: Storage, queue: RunQueue, cleanup: Cleanup, job: Job, written: list[Written]
) -> str:
    """Move every file to a free final key, then the manifest; returns the manifest's key.
    The manifest is written under the attempt's temporary prefix first and moved like the
    files: a put would replace the manifest of an attempt that took over this run while this
    one was frozen, and a frozen attempt's temporary files are gone once it is reaped."""
    claimed = job.claimed
    manifest_key = final_names(storage, job, written)
    manifest_file = manifest_key.rsplit("/", 1)[-1]
    # In a folder of its own: no data file's temporary name can be the manifest's.
    staged = tmp_key(
        claimed.workspace_id, claimed.run_id, claimed.lease_token, f"manifest/{manifest_file}"
    )
    storage.put(staged, manifest(job, written), ObjectHeaders("application/json", manifest_file))
    taken = [w.final_key for w in written] + [manifest_key]
    if not queue.mark_publishing(claimed, sorted(taken)):
        raise LeaseLost
    published: list[str] = []
    try:
        for w in written:
            storage.publish(w.temp_key, w.final_key)
            published.append(w.final_key)
        storage.publish(staged, manifest_key)
    except Exception as exc:  # publish all or nothing: what this attempt moved goes again
        # Unless this attempt was frozen past its lease and the next one took those names;
        # what the store refuses to delete now, the reaper deletes later.
        cleanup.now_or_later(
            Leftover(claimed.run_id, claimed.workspace_id, claimed.lease_token, published)
        )
        if isinstance(exc, DestinationExists):
            raise RunFailure(f"a file appeared at {exc.key!r} while publishing; run again") from exc
        raise
    return manifest_key


def _window(job: Job) -> dict[str, Any] | None:
    """The window the run read, its marks as they are stored (a number's as its text)."""
    window = job.plan.window
    return None if window is None else {k: json_value(v) for k, v in asdict(window).items()}


def manifest(job: Job, written: list[Written]) -> bytes:
    """The run's manifest: what it ran with and every file it published."""
    spec = job.claimed.spec
    body = {
        "configuration": spec.configuration.to_json(),
        "template": {"id": spec.template.id, "name": spec.template.name},
        "executionId": job.claimed.execution_id,
        "run": job.claimed.run_number,
        "startedAt": job.claimed.started_at.isoformat(),
        "parameters": spec.options.to_json(),
        "window": _window(job),
        "files": [
            {
                "name": w.name,
                "key": w.final_key,
                "subExtractId": w.sub_extract_id,
                "subExtractValue": w.value,
                "recordCount": w.file.rows,
                "bytes": w.file.size,
                "sha256": w.file.sha256,
            }
            for w in written
        ],
    }
    try:
        # orjson's indented output is json.dumps(indent=2)'s (floats may spell their exponent
        # shorter); the json module's indenting encoder is pure Python, a few percent of a
        # tiny run's CPU (bench/README.md, issue 19).
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)
    except TypeError:  # what orjson refuses, an integer beyond 64 bits
        return json.dumps(body, indent=2, ensure_ascii=False).encode()
