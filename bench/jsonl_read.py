"""Reading a JSONL file: the files source (block by block, naming late keys) against the
``pyarrow.dataset`` scan it replaced for JSONL.

    .venv/bin/python bench/jsonl_read.py [--rows 1500000]

Writes (once) a JSONL file of --rows rows of 5 keys into a temporary folder, then reads it in a
fresh process per case, three times each: ``dataset`` scans it as the source did before (the
template's schema, serial scanner, read-ahead of two batches), ``source`` reads it through
``FilesSource.read``. Prints wall and CPU seconds (CPU counts every thread) and the process's
peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _write(path: Path, rows: int) -> None:
    with path.open("w") as f:
        for i in range(rows):
            row = {
                "id": i,
                "name": f"customer {i}",
                "amount": i * 0.5,
                "region": "EU",
                "at": "2026-01-01 10:00:00",
            }
            f.write(json.dumps(row) + "\n")


def _case(case: str, folder: Path) -> None:
    import pyarrow.dataset as ds

    from egress.domain.catalog import TableRef
    from egress.domain.plan import ReadPlan
    from egress.settings import Settings
    from egress.sources.files import FilesSettings, FilesSource
    from egress.sources.policy import SourcePolicy

    path = folder / "big.jsonl"
    wall, cpu, rows = time.perf_counter(), time.process_time(), 0
    if case == "dataset":
        schema = ds.dataset(path, format="json").schema
        scanner = ds.dataset(path, format="json", schema=schema).scanner(
            batch_size=65_536, batch_readahead=2, fragment_readahead=1, use_threads=False
        )
        rows = sum(b.num_rows for b in scanner.to_batches())
    else:
        settings = Settings(data_dir=folder / "data", files_roots=str(folder))
        policy = SourcePolicy.from_settings(settings)
        source = FilesSource(FilesSettings(url=folder.as_uri()), {}, policy)
        table = next(t for t in source.catalog() if t.qualified_name == "big.jsonl")
        plan = ReadPlan(TableRef(None, "big.jsonl"), table.columns, table.columns)
        rows = sum(b.num_rows for b in source.read(plan, 65_536))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"{case:8} {rows:>10,} rows  {wall:6.2f} s wall  {cpu:6.2f} s CPU  {peak} MiB peak")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_500_000)
    parser.add_argument("--case", choices=["dataset", "source"])
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.case:
        _case(args.case, args.folder)
        return
    with tempfile.TemporaryDirectory(prefix="egress-bench-jsonl-") as tmp:
        folder = Path(tmp)
        _write(folder / "big.jsonl", args.rows)
        print(f"{(folder / 'big.jsonl').stat().st_size >> 20} MiB, {args.rows:,} rows")
        for _ in range(3):
            for case in ("dataset", "source"):
                subprocess.run(
                    [sys.executable, __file__, "--case", case, "--folder", str(folder)],
                    check=True,
                )


if __name__ == "__main__":
    main()
