"""Reading CSV through the files source, which parses number columns itself (so `0x10`, `1e400`
or ` 007` are never changed into another number), against DuckDB reading the same rows and a
bare ``pyarrow.dataset`` scan (Arrow's own number parsing, what the source did before).

    .venv/bin/python bench/csv_read.py [--rows 1000000] [--files 3000] [--rounds 3]

Writes (once) one CSV of --rows rows (an integer id, a two-decimal amount, an integer, a float
in exponent form, a short text) and a folder of --files one-row CSV files, then reads each in a
fresh process per case and round: ``duckdb`` (``read_csv`` into Arrow batches, 2 threads),
``dataset`` (pyarrow's scan with the template's types), ``source`` (``FilesSource.read``). Prints
wall and CPU seconds (every thread) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = ("duckdb", "dataset", "source")


def _write(folder: Path, rows: int, files: int) -> None:
    rng = random.Random(1)
    with (folder / "big.csv").open("w") as f:
        f.write("id,amount,qty,score,name\n")
        f.writelines(
            f"{i},{rng.randint(0, 99999) / 100:.2f},{rng.randint(0, 500)},"
            f"{rng.random():.6e},n{i % 977}\n"
            for i in range(rows)
        )
    many = folder / "many"
    many.mkdir()
    for i in range(files):
        (many / f"f{i:05d}.csv").write_text(f"id,v,score\n{i},x,{i / 7:.6e}\n")


def _case(case: str, folder: Path, name: str) -> None:
    import duckdb
    import pyarrow.dataset as ds

    from egress.domain.catalog import TableRef
    from egress.domain.plan import ReadPlan
    from egress.settings import Settings
    from egress.sources.arrow_types import arrow_schema
    from egress.sources.files import FilesSettings, FilesSource
    from egress.sources.policy import SourcePolicy

    settings = Settings(data_dir=folder / "data", files_roots=str(folder))
    source = FilesSource(
        FilesSettings(url=folder.as_uri()), {}, SourcePolicy.from_settings(settings)
    )
    table = next(t for t in source.catalog() if t.qualified_name == name)
    wall, cpu, rows = time.perf_counter(), time.process_time(), 0
    target = folder / name
    if case == "duckdb":
        glob = f"{target}/*.csv" if target.is_dir() else str(target)
        con = duckdb.connect(config={"threads": 2})
        reader = con.sql(f"SELECT * FROM read_csv('{glob}')").to_arrow_reader(65_536)
        rows = sum(b.num_rows for b in reader)
    elif case == "dataset":
        scanner = ds.dataset(target, format="csv", schema=arrow_schema(table.columns)).scanner(
            batch_size=65_536, batch_readahead=2, fragment_readahead=1, use_threads=False
        )
        rows = sum(b.num_rows for b in scanner.to_batches())
    else:
        plan = ReadPlan(TableRef(None, name), table.columns, table.columns)
        rows = sum(b.num_rows for b in source.read(plan, 65_536))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10
    print(f"{name:8} {case:8} {rows:>10,} rows  {wall:6.2f} s wall  {cpu:6.2f} s CPU  {peak} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--case", choices=CASES)
    parser.add_argument("--name")
    parser.add_argument("--folder", type=Path)
    args = parser.parse_args()
    if args.case:
        _case(args.case, args.folder, args.name)
        return
    with tempfile.TemporaryDirectory(prefix="egress-bench-csv-") as tmp:
        folder = Path(tmp)
        _write(folder, args.rows, args.files)
        for name in ("big.csv", "many"):
            for _ in range(args.rounds):
                for case in CASES:
                    command = [sys.executable, __file__, "--case", case, "--name", name]
                    subprocess.run([*command, "--folder", str(folder)], check=True)


if __name__ == "__main__":
    main()
