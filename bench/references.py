"""The reference tools `extract_throughput.py` times beside Egress in the same run: `psql \\copy`,
a raw Python ADBC → Parquet loop, DuckDB converting the Parquet folder, `mariadb --batch`.

Each returns its wall-clock seconds; what they write goes to ``out`` (removed by the caller's
temporary folder)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc_pg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pymysql

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# EGRESS_BENCH_DB: a database of one's own, when others run the benchmark on the same servers.
DB = os.environ.get("EGRESS_BENCH_DB", "egress_bench")
DB_URL = ADMIN.rsplit("/", 1)[0] + f"/{DB}"
COLUMNS = (
    "id, order_number, customer, region, quantity, amount, is_gift, order_date, created_at,"
    " shipped_at, notes, ref"
)
DECIMAL = pa.decimal128(12, 2)


def psql_copy(out: Path, extra: tuple[str, ...] = ()) -> float:
    """``psql \\copy`` of the benchmark's columns (and ``extra`` ones) into a CSV file."""
    columns = ", ".join([COLUMNS, *extra])
    started = time.perf_counter()
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            DB,
            "-q",
            "-c",
            f"\\copy (SELECT {columns} FROM orders) TO '{out}' CSV HEADER",
        ],
        check=True,
    )
    return time.perf_counter() - started


def adbc_parquet(out: Path) -> float:
    """The best raw Python path to Parquet here (connectorx does not install): ADBC's Arrow
    stream of the same columns into pyarrow's ParquetWriter, zstd, as Egress writes."""
    select = COLUMNS.replace("ref", "ref::text AS ref").replace("amount", "amount::text AS amount")
    started = time.perf_counter()
    with adbc_pg.connect(DB_URL) as conn, conn.cursor() as cur:
        cur.execute(f"SELECT {select} FROM orders")
        reader = cur.fetch_record_batch()
        # numeric arrives as text: DECIMAL in the file, as Egress (and connectorx) write it.
        at = reader.schema.get_field_index("amount")
        schema = reader.schema.set(at, pa.field("amount", DECIMAL))
        with pq.ParquetWriter(out, schema, compression="zstd") as writer:
            for batch in reader:
                amount = pc.cast(batch.column(at), DECIMAL)
                writer.write_batch(batch.set_column(at, "amount", amount))
    return time.perf_counter() - started


def duckdb_files(folder: Path, out: Path, fmt: str) -> float:
    """DuckDB (2 threads) converting the Parquet folder to CSV or Parquet (zstd)."""
    import duckdb  # only this reference needs it

    started = time.perf_counter()
    with duckdb.connect() as db:
        db.execute("SET threads = 2")
        options = "(FORMAT csv, HEADER)" if fmt == "csv" else "(FORMAT parquet, COMPRESSION zstd)"
        db.execute(f"COPY (SELECT * FROM read_parquet('{folder}/*.parquet')) TO '{out}' {options}")
    return time.perf_counter() - started


MYSQL_TABLE = """CREATE TABLE orders (
    id BIGINT PRIMARY KEY, order_number VARCHAR(20) NOT NULL, customer VARCHAR(40) NOT NULL,
    region VARCHAR(8) NOT NULL, quantity INT NOT NULL, amount DECIMAL(12,2) NOT NULL,
    is_gift BOOLEAN NOT NULL, order_date DATE NOT NULL, created_at TIMESTAMP(6) NOT NULL,
    shipped_at DATETIME(6) NULL, notes TEXT NULL, ref CHAR(36) NULL)"""
# The PostgreSQL table's values, from MariaDB's SEQUENCE engine.
MYSQL_FILL = """INSERT INTO orders SELECT seq, CONCAT('ORD-', LPAD(seq, 8, '0')),
    CONCAT('customer ', seq % 9973),
    ELT(1 + seq % 8, 'EU', 'NA', 'APAC', 'LATAM', 'MEA', 'CN', 'IN', 'OC'),
    1 + seq % 9, (seq % 100000) / 100.0, seq % 10 = 0,
    DATE '2026-01-01' + INTERVAL (seq % 365) DAY,
    TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq SECOND,
    IF(seq % 3 = 0, NULL, TIMESTAMP '2026-01-02 00:00:00' + INTERVAL seq SECOND),
    IF(seq % 4 = 0, NULL, CONCAT('note ', seq, ' - ünïcødé')), UUID()
  FROM seq_1_to_{rows}"""


def mysql_orders(rows: int) -> None:
    """The orders table in MariaDB/MySQL (127.0.0.1:3306, root), created once per row count."""
    my = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS `{DB}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{DB}`")
        cur.execute("SET time_zone = '+00:00'")
        cur.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s"
            " AND table_name = 'orders'",
            (DB,),
        )
        if cur.fetchone()[0]:  # type: ignore[index]
            cur.execute("SELECT count(*) FROM orders")
            if cur.fetchone()[0] == rows:  # type: ignore[index]
                return
            cur.execute("DROP TABLE orders")
        print(f"generating {rows:,} rows in MariaDB …", flush=True)
        cur.execute(MYSQL_TABLE)
        cur.execute(MYSQL_FILL.format(rows=rows))
    my.close()


def mariadb_batch(out: Path) -> float:
    """`mariadb --batch -e "SELECT …" > file` of the same rows (tab-separated)."""
    started = time.perf_counter()
    with out.open("wb") as sink:
        subprocess.run(
            [
                "mariadb",
                "-h",
                "127.0.0.1",
                "-u",
                "root",
                "--batch",
                DB,
                "-e",
                f"SELECT {COLUMNS} FROM orders",
            ],
            check=True,
            stdout=sink,
        )
    return time.perf_counter() - started
