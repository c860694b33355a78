"""Files and folders of CSV, Parquet and JSONL (optionally gzip) on disk or in an S3 bucket.

Each data file is a dataset, and so is each folder whose data files share one format and one
schema (``sales`` for ``sales/2026-01.parquet`` and ``sales/2026-02.parquet``). Schemas come from
Parquet footers or from inference over the first block of a CSV/JSONL file; reads stream through
``pyarrow.dataset`` with the plan's filter pushed into the scan, batch by batch.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from egress.domain.catalog import ColumnInfo, TableInfo
from egress.domain.errors import Invalid
from egress.domain.plan import ReadPlan
from egress.query.arrow_filter import plan_filter
from egress.sources import confine
from egress.sources.arrow_types import (
    arrow_schema,
    arrow_type,
    can_be_infinite,
    conform,
    infinity_masks,
)
from egress.sources.base import OpenCalls, SourceError, clean
from egress.sources.confined_fs import confined_local_filesystem
from egress.sources.files.formats import (
    CSV_ROW,
    JSON_ROW,
    ChangedValue,
    DataFile,
    columns_of,
    csv_convert,
    csv_numbers,
    csv_text_schema,
    csv_trimmed,
    data_format,
    exact_csv_type,
    exact_json_type,
    file_format,
    file_version,
    first_not_utf8,
    gzipped_parquet,
    holds,
    is_float,
    json_strings,
    nested_as_json,
    not_utf8,
    shared_schema,
    unreadable,
)
from egress.sources.files.jsonl import first_numbers, read_jsonl
from egress.sources.files.schemas import SCHEMAS
from egress.sources.files.settings import FilesSettings, checked_location, s3_filesystem
from egress.sources.policy import HostDenied, SourcePolicy
from egress.sources.walk import Entry, walk

_BATCH_READAHEAD = 2
_FRAGMENT_READAHEAD = 1

ROOT = "."


def _path(plan: ReadPlan) -> str:
    """A files template reads a path relative to the connection (its table has no schema)."""
    assert plan.table is not None, "files have no SQL templates"
    return plan.table.name


def _hidden(name: str) -> bool:
    """Names Egress never lists: dot files and Spark/Hive markers (``_SUCCESS``, ``_temporary``)."""
    return name.startswith((".", "_"))


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ROOT


class FilesSource:
    def __init__(
        self, settings: FilesSettings, secrets: dict[str, str], policy: SourcePolicy
    ) -> None:
        self._policy = policy
        self._calls = OpenCalls()
        self._local = urlparse(settings.url).scheme == "file"
        self._nulls = tuple(settings.csvNullValues)
        self._unzipped: dict[str, str] = {}  # a decompressed copy → the file's relative path
        self._noticed: dict[str, None] = {}  # warnings, in order, each once
        self._cursor_nulls: int | None = None  # with the last mark read (``max_value``)
        try:
            self._root = checked_location(settings, policy)
        except (confine.PathRefused, HostDenied) as exc:
            raise SourceError(f"{settings.url}: {exc}") from exc
        if self._local:
            # Each file checked when it is opened, on the descriptor read (confined_fs).
            self._fs: pafs.FileSystem = confined_local_filesystem(policy)
        else:
            self._fs = s3_filesystem(settings, secrets, policy)

    # -------------------------------------------------------------- discovery

    def _absolute(self, relative: str) -> str:
        return self._root if relative == ROOT else f"{self._root}/{relative}"

    def _data_files(self, under: str = ROOT, recursive: bool = True) -> list[DataFile]:
        """The data files below a folder (or only its direct ones), within the catalog limits:
        the walk stops at the first entry beyond them."""
        start = self._absolute(under)
        lister = self._local_entries if self._local else self._remote_entries
        identity = None
        if self._local:
            try:
                start = str(confine.confined(start, self._policy))
                st = os.stat(start)
            except confine.PathRefused as exc:
                raise SourceError(f"{under}: {exc}") from exc
            except OSError as exc:
                raise SourceError(f"cannot list {under}: {clean(exc)}") from exc
            identity = (st.st_dev, st.st_ino)
        files = []
        for relative, entry in walk(lister, start, self._policy, recursive, identity):
            if under != ROOT:
                relative = f"{under}/{relative}"
            if not entry.is_dir and (fmt := data_format(entry.name)) is not None:
                files.append(DataFile(relative, fmt, entry.version))
        return sorted(files, key=lambda f: f.path)

    def _local_entries(self, folder: str) -> Iterator[Entry | None]:
        """A local folder's entries by real path; None for one skipped (a symlink leaving the
        roots, Egress's own files, a vanished file). Symlinks inside the roots are followed."""
        with os.scandir(folder) as entries:
            for item in entries:
                if _hidden(item.name):
                    yield None
                    continue
                try:
                    location = item.path  # real: its folder is real and it is no symlink
                    if item.is_symlink():
                        location = os.path.realpath(item.path)
                    st = os.stat(location)
                except OSError:
                    yield None
                    continue
                is_dir = stat.S_ISDIR(st.st_mode)
                check = confine.is_passable if is_dir else confine.is_allowed
                if not check(Path(location), self._policy):
                    yield None
                    continue
                yield Entry(
                    item.name,
                    location,
                    is_dir,
                    (st.st_size, st.st_mtime_ns),
                    (st.st_dev, st.st_ino),
                )

    def _remote_entries(self, folder: str) -> Iterator[Entry | None]:
        for info in self._fs.get_file_info(pafs.FileSelector(folder)):
            if _hidden(info.base_name):
                yield None
                continue
            is_dir = info.type == pafs.FileType.Directory
            yield Entry(info.base_name, info.path, is_dir, file_version(info), None)

    def check(self) -> None:
        try:
            info = self._fs.get_file_info(self._root)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"cannot reach {self._root}: {clean(exc)}") from exc
        if info.type != pafs.FileType.Directory:
            raise SourceError(f"{self._root} is not a folder")

    def catalog(self) -> list[TableInfo]:
        self.check()
        tables: list[TableInfo] = []
        by_folder: dict[str, list[tuple[DataFile, pa.Schema | None]]] = {}
        for f in self._data_files():
            folder = _parent(f.path)
            name = f.path.rsplit("/", 1)[-1]
            schema: pa.Schema | None = None
            try:
                schema = self._native_schema([f])
            except SourceError as exc:  # shown on its own; it must not hide the other files
                tables.append(TableInfo(folder, name, [], kind="file", path=f.path, error=str(exc)))
            else:
                columns = columns_of(schema)
                tables.append(
                    TableInfo(folder, name, columns, kind="file", path=f.path, format=f.format)
                )
            by_folder.setdefault(folder, []).append((f, schema))
        for folder, members in by_folder.items():
            schema = shared_schema(members)
            if schema is not None:
                tables.append(
                    TableInfo(
                        folder,
                        folder,
                        columns_of(schema),
                        kind="folder",
                        path=folder,
                        format=members[0][0].format,
                    )
                )
        return tables

    def infer_columns(self, path: str, null_values: tuple[str, ...]) -> list[ColumnInfo]:
        """The columns of a file or folder as read with other NULL spellings (a custom
        template's own): a column whose only odd values are those spellings gets a type."""
        files = self._resolve(path)
        members = [(f, self._native_schema([f], null_values)) for f in files]
        schema = shared_schema(members) if members else None
        if schema is None:
            raise SourceError(f"{path}: no data files with one shared schema")
        return columns_of(schema)

    def _resolve(self, relative: str) -> list[DataFile]:
        """The data files of a template: one file, or a folder's direct data files."""
        if self._local and not confine.is_allowed(
            Path(os.path.realpath(self._absolute(relative))), self._policy
        ):
            raise SourceError(f"{relative}: {confine.refusal(self._policy)}")
        try:
            info = self._fs.get_file_info(self._absolute(relative))
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(f"cannot read {relative}: {clean(exc)}") from exc
        if info.type == pafs.FileType.File:
            fmt = data_format(info.base_name)
            if fmt is None:
                raise SourceError(f"{relative} is not a CSV, Parquet or JSONL file")
            return [DataFile(relative, fmt, file_version(info))]
        if info.type == pafs.FileType.Directory:
            files = self._data_files(relative, recursive=False)
            if len({f.format for f in files}) > 1:
                raise SourceError(f"{relative} mixes file formats; use one template per file")
            return files
        raise SourceError(f"{relative} no longer exists")

    def _native_schema(
        self, files: list[DataFile], nulls: tuple[str, ...] | None = None
    ) -> pa.Schema:
        """The schema the first file declares (Parquet) or suggests (inferred from its first
        block, ``nulls`` or the connection's NULL spellings), cached by the file's size and
        modification time."""
        first = files[0]
        size, mtime = first.version
        nulls = self._nulls if nulls is None else nulls
        key = None
        if size is not None and mtime is not None:
            key = (self._fs.type_name, self._absolute(first.path), size, mtime, nulls)
            cached = SCHEMAS.get(key)
            if isinstance(cached, str):
                raise SourceError(cached)
            if cached is not None:
                return cached
        try:
            with contextlib.ExitStack() as scratch:
                schema = self._open_dataset(
                    [first], file_format(first.format, None, nulls), None, scratch
                ).schema
            if first.format == "csv":
                schema = self._exact_csv_schema(first, schema, nulls)
            elif first.format == "json":
                schema = self._exact_jsonl_schema(first, json_strings(schema))
        except (OSError, pa.ArrowException) as exc:
            header = None
            if first.format == "csv" and _NO_LINE in clean(exc):
                header = self._header_only(first, nulls)
            if header is None:
                problem = self._explain(exc, first)
                if key is not None:
                    SCHEMAS.put(key, problem)
                raise SourceError(problem) from exc
            schema = header
        except SourceError as exc:  # the file's own text (not UTF-8): remembered the same
            if key is not None:
                SCHEMAS.put(key, str(exc))
            raise
        if key is not None:
            SCHEMAS.put(key, schema)
        return schema

    def _header_only(self, file: DataFile, nulls: tuple[str, ...]) -> pa.Schema | None:
        """The columns of a CSV file that is its header line and nothing else, without a
        final newline (Arrow's reader finds no complete line in it, and fails), marked
        ``_HEADER_ONLY`` so that runs skip the file: it has no rows. None for any other file."""
        try:
            with self._fs.open_input_stream(self._absolute(file.path)) as stream:
                text = stream.read(_BLOCK + 1)
            if len(text) > _BLOCK or not text.strip():
                return None
            table = pcsv.read_csv(pa.BufferReader(text + b"\n"), convert_options=csv_convert(nulls))
        except (OSError, pa.ArrowException):
            return None
        if table.num_rows:
            return None
        return table.schema.with_metadata({_HEADER_ONLY: b"1"})

    def _has_rows(self, file: DataFile) -> bool:
        """Whether a run reads ``file``: not a header-only CSV file (``_header_only``), which
        Arrow's reader cannot open. An unreadable file is read, and fails naming itself."""
        if file.format != "csv":
            return True
        try:
            metadata = self._native_schema([file]).metadata
        except SourceError:
            return True
        return not metadata or _HEADER_ONLY not in metadata

    def _exact_csv_schema(
        self, file: DataFile, inferred: pa.Schema, nulls: tuple[str, ...]
    ) -> pa.Schema:
        """Arrow's inference, corrected where it would change a value: the number, date, time
        and timestamp columns are read again as text from the same first block and typed by
        ``exact_csv_type``. A ``binary`` column (text that is not UTF-8) fails, naming its
        first such line: its base64 is not the file's text."""
        typed = [f.name for f in inferred if csv_trimmed(f.type)]
        binary = [f.name for f in inferred if pa.types.is_binary(f.type)]
        if not typed and not binary:
            return inferred
        convert = csv_convert(nulls)
        convert.column_types = {
            **dict.fromkeys(typed, pa.string()),
            **dict.fromkeys(binary, pa.binary()),
        }
        convert.include_columns = [*typed, *binary]
        with self._fs.open_input_stream(self._absolute(file.path)) as stream:
            first = pcsv.open_csv(stream, convert_options=convert).read_next_batch()
        for name in binary:
            row = first_not_utf8(first.column(name))
            line = "" if row is None else f" line {row + 2}"  # the header is line 1
            raise SourceError(f"{file.path}{line}: {not_utf8(name)}")
        for name in typed:
            values = [v for v in first.column(name).to_pylist() if v is not None]
            exact = exact_csv_type(inferred.field(name).type, values)
            inferred = inferred.set(inferred.get_field_index(name), pa.field(name, exact))
        return inferred

    def _exact_jsonl_schema(self, file: DataFile, inferred: pa.Schema) -> pa.Schema:
        """Arrow's inference, corrected where a float64 would change a number of the first
        block: the texts of the float columns' numbers are read again and typed by
        ``exact_json_type``."""
        floats = [f.name for f in inferred if is_float(f.type)]
        if not floats:
            return inferred
        with self._fs.open_input_stream(self._absolute(file.path)) as stream:
            numbers = first_numbers(stream, floats)
        for name in floats:
            index = inferred.get_field_index(name)
            inferred = inferred.set(index, pa.field(name, exact_json_type(numbers[name])))
        return inferred

    # -------------------------------------------------------------- reading

    def _notice_differences(
        self, files: list[DataFile], first: pa.Schema, template: list[str]
    ) -> None:
        """A dataset reads every file with the template's columns: a column only some files
        have is not read, and a template column a file lacks is NULL in its rows. Say so."""
        for file in files[1:]:
            try:
                names = self._native_schema([file]).names
            except SourceError:
                continue  # the scan fails on it, naming it
            for name in names:
                if name not in first.names:
                    self._noticed[
                        f"{file.path}: column {name!r} is not in the template "
                        f"({files[0].path} has no such column); it was not read"
                    ] = None
            for name in template:
                if name not in names:
                    self._noticed[
                        f"{file.path}: has no column {name!r}; its rows have NULL there"
                    ] = None

    def warnings(self) -> list[str]:
        return list(self._noticed)

    def _open_dataset(
        self,
        files: list[DataFile],
        fmt: ds.FileFormat,
        schema: pa.Schema | None,
        scratch: contextlib.ExitStack,
    ) -> ds.Dataset:
        """A dataset of ``files``. Parquet needs random access, which a gzip stream cannot
        give: a ``.parquet.gz`` is first decompressed into a local temporary file, removed
        when ``scratch`` closes."""
        plain = [f for f in files if not gzipped_parquet(f)]
        gzipped = [f for f in files if gzipped_parquet(f)]
        parts = []
        if plain:
            paths = [self._absolute(f.path) for f in plain]
            parts.append(ds.dataset(paths, schema=schema, format=fmt, filesystem=self._fs))
        if gzipped:
            folder = scratch.enter_context(tempfile.TemporaryDirectory(prefix="egress-parquet-"))
            local = [self._gunzip(f, folder, i) for i, f in enumerate(gzipped)]
            parts.append(
                ds.dataset(local, schema=schema, format=fmt, filesystem=pafs.LocalFileSystem())
            )
        return parts[0] if len(parts) == 1 else ds.dataset(parts)

    def _gunzip(self, file: DataFile, folder: str, index: int) -> str:
        target = os.path.join(folder, f"{index}.parquet")
        self._unzipped[target] = file.path  # errors name the file, not the copy
        with (  # the stream gunzips: the name ends with .gz
            self._fs.open_input_stream(self._absolute(file.path)) as src,
            open(target, "wb") as out,
        ):
            while chunk := src.read(1 << 20):
                self._calls.check()
                out.write(chunk)
        return target

    def _dataset(
        self, plan: ReadPlan, scratch: contextlib.ExitStack
    ) -> tuple[ds.Dataset | None, list[DataFile], pa.Schema]:
        """The dataset of the plan's files, and the template's schema: the types its batches
        are delivered in (a CSV dataset reads numbers as text, ``csv_numbers`` parses them)."""
        path = _path(plan)
        files = self._resolve(path)
        if not files:
            return None, files, pa.schema([])
        native = self._native_schema(files)
        shape = self._folder_schema(files, native)
        readable = [f for f in files if self._has_rows(f)]
        # The template's logical types decide how text is parsed, so every file of a folder
        # (and every later version of a file) is read the same way; nested values (of the whole
        # folder's type) and extension types (``conform`` unwraps them) stay native.
        fields = []
        for col in plan.columns or plan.fields:
            if col.name not in native.names:
                raise SourceError(f"{path}: column {col.name!r} no longer exists")
            own = shape.field(col.name).type
            keep = col.type == "json" or isinstance(own, pa.BaseExtensionType)
            fields.append(pa.field(col.name, own if keep else arrow_type(col.type)))
        schema = pa.schema(fields)
        self._notice_differences(files, native, schema.names)
        if not readable:  # header-only CSV files: no rows
            return None, files, schema
        fmt = files[0].format
        read = csv_text_schema(schema) if fmt == "csv" else schema
        nulls = self._nulls if plan.null_values is None else plan.null_values
        try:
            parts = [
                self._open_dataset(group, file_format(fmt, schema, nulls, one), read, scratch)
                for one, group in self._csv_groups(readable)
            ]
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(self._explain(exc, readable[0])) from exc
        return parts[0] if len(parts) == 1 else ds.dataset(parts), readable, schema

    def _folder_schema(self, files: list[DataFile], native: pa.Schema) -> pa.Schema:
        """The folder's shared schema (the catalog's), whose nested types hold every file's
        keys; the first file's when there is one file or no shared schema."""
        if len(files) == 1:
            return native
        try:
            shared = shared_schema([(f, self._native_schema([f])) for f in files])
        except SourceError:
            return native  # the scan fails on that file, naming it
        return native if shared is None else shared

    def _csv_groups(self, files: list[DataFile]) -> list[tuple[bool, list[DataFile]]]:
        """Runs of consecutive files, in order, by whether each is a CSV file whose own header
        has one column (there an empty line is a NULL, see ``file_format``)."""
        groups: list[tuple[bool, list[DataFile]]] = []
        for file in files:
            one = False
            if file.format == "csv":
                with contextlib.suppress(SourceError):  # the scan fails on it, naming it
                    one = len(self._native_schema([file]).names) == 1
            if groups and groups[-1][0] == one:
                groups[-1][1].append(file)
            else:
                groups.append((one, [file]))
        return groups

    def _scan(
        self, plan: ReadPlan, columns: list[str], batch_rows: int
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """The plan's rows as (the file they come from, batch)."""
        with contextlib.ExitStack() as scratch:
            yield from self._scan_in(plan, columns, batch_rows, scratch)

    def _scan_in(
        self, plan: ReadPlan, columns: list[str], batch_rows: int, scratch: contextlib.ExitStack
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        dataset, files, schema = self._dataset(plan, scratch)
        if dataset is None:
            return
        try:
            condition = plan_filter(plan, schema)
        except Invalid as exc:
            raise SourceError("; ".join(f"whereClause: {e.msg}" for e in exc.errors)) from exc
        except OverflowError as exc:  # a filter value beyond Arrow's 64-bit integers
            raise SourceError(f"a value in the filter does not fit Arrow: {exc}") from exc
        batches: Iterator[tuple[str, pa.RecordBatch]]
        if files[0].format == "json":
            batches = self._jsonl_batches(files, schema, condition, columns, batch_rows)
        elif files[0].format == "csv":
            batches = self._csv_batches(dataset, schema, condition, columns, batch_rows)
        else:
            batches = self._tagged(dataset, columns, condition, batch_rows)
        while True:
            self._calls.check()
            try:
                path, batch = next(batches)
            except StopIteration:
                return
            except (OSError, pa.ArrowException) as exc:
                text = self._explain(exc, files[0], len(files) > 1)
                native = self._native_schema(files)
                explained = _lossy_cast(text, native, schema) or _unread(
                    text, self._natives(files), schema, f"{_parent(files[0].path)}/*"
                )
                raise SourceError(explained or text) from exc
            if batch.num_rows:
                yield path, batch

    def _natives(self, files: list[DataFile]) -> list[tuple[str, pa.Schema]]:
        """Each readable file's own schema (cached), by its path."""
        natives = []
        for file in files:
            with contextlib.suppress(SourceError):
                natives.append((file.path, self._native_schema([file])))
        return natives

    def _tagged(
        self,
        dataset: ds.Dataset,
        columns: list[str],
        condition: pc.Expression | None,
        batch_rows: int,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        scanner = dataset.scanner(
            columns=columns,
            filter=condition,
            batch_size=batch_rows,
            # Bounded read-ahead needs all three: the threaded scanner (whatever its
            # read-ahead) and the default read-ahead (even serial) each held 800-900 MiB
            # behind a slower sink on 4 M rows; together they keep a few batches in flight
            # (bench/README.md).
            batch_readahead=_BATCH_READAHEAD,
            fragment_readahead=_FRAGMENT_READAHEAD,
            use_threads=False,
        )
        for tagged in scanner.scan_batches():
            yield self._relative(tagged.fragment.path), tagged.record_batch

    def _csv_batches(
        self,
        dataset: ds.Dataset,
        schema: pa.Schema,
        condition: pc.Expression | None,
        columns: list[str],
        batch_rows: int,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """CSV rows with their numbers parsed by ``csv_numbers`` (failing naming the line) and
        only then filtered: the filter compares numbers, the scan reads text. Every template
        column is read when there is a filter, which may name any of them. Small batches (a
        folder of tiny files) are parsed together, up to ``batch_rows`` rows at a time."""
        read = columns if condition is None else schema.names
        group = _CsvGroup()
        for path, batch in self._tagged(dataset, read, None, batch_rows):
            group.add(path, batch)
            if group.rows >= batch_rows:
                yield from self._parsed_group(group, schema, condition, columns, batch_rows)
        yield from self._parsed_group(group, schema, condition, columns, batch_rows)

    def _parsed_group(
        self,
        group: _CsvGroup,
        schema: pa.Schema,
        condition: pc.Expression | None,
        columns: list[str],
        batch_rows: int,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """The group's batches parsed, as (file, batch) again; the group is emptied."""
        if not group.parts:
            return
        try:
            table = csv_numbers(pa.Table.from_batches(group.batches), schema)
        except ChangedValue as exc:  # the header is line 1, as in Arrow's "Row #"
            path, line = group.line_of(exc.row)
            raise SourceError(f"{path} line {line}: {exc}") from exc
        for path, offset, rows in group.take_parts():
            part = table.slice(offset, rows)
            if condition is not None:
                part = part.filter(condition).select(columns)
            yield from ((path, b) for b in part.to_batches(max_chunksize=batch_rows))

    def _relative(self, location: str) -> str:
        """A file's name relative to the connection's root (a decompressed copy's original)."""
        return self._unzipped.get(location) or location[len(self._root) :].lstrip("/")

    def _jsonl_batches(
        self,
        files: list[DataFile],
        schema: pa.Schema,
        condition: pc.Expression | None,
        columns: list[str],
        batch_rows: int,
    ) -> Iterator[tuple[str, pa.RecordBatch]]:
        """JSONL files one after the other, read by ``jsonl`` so that keys the template lacks
        are named on the run (the dataset scan drops them silently)."""
        for file in files:
            try:
                known = self._native_schema([file]).names
            except SourceError:
                known = []  # the read below fails on it, naming the line
            try:
                with self._fs.open_input_stream(self._absolute(file.path)) as stream:
                    notice = self._noticed.setdefault
                    for table in read_jsonl(
                        stream, file.path, schema, known, notice, self._calls.check
                    ):
                        if condition is not None:
                            table = table.filter(condition)
                        for batch in table.select(columns).to_batches(max_chunksize=batch_rows):
                            yield file.path, batch
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"{file.path}: {clean(exc)}") from exc
            except SourceError as exc:
                raise SourceError(self._only_null(str(exc), files[0])) from exc

    def _only_null(self, text: str, first: DataFile) -> str:
        """``text`` saying why a column changed type when the template's first 1 MiB held
        only null for it: Arrow's "changed from string to number" names a string never seen."""
        found = _CHANGED.search(text)
        if found is None:
            return text
        name = found.group(1)
        try:
            native = self._native_schema([first])
        except SourceError:
            return text
        if name not in native.names or not pa.types.is_null(native.field(name).type):
            return text
        return (
            f"{text}; column {name!r} held only null in the first 1 MiB of {first.path}, so "
            "its type is unknown and the template reads it as string: put a line with a value "
            "for it within the first 1 MiB and list the templates again"
        )

    def read(
        self, plan: ReadPlan, batch_rows: int, batch_bytes: int | None = None
    ) -> Iterator[pa.RecordBatch]:
        # The scan's batches are rows of one block (CSV, JSONL) or row group (Parquet): the
        # runner slices any over the byte bound before a writer sees it.
        schema = arrow_schema(plan.fields)
        for path, batch in self._scan(plan, [f.name for f in plan.fields], batch_rows):
            try:
                conformed = conform(nested_as_json(batch), schema)
            except ValueError as exc:
                raise SourceError(f"{_path(plan)}: {exc}") from exc
            _refuse_extremes(path, conformed)
            yield conformed

    def max_value(self, plan: ReadPlan, field: str) -> Any:
        # The high-water mark is over all records: no filter, like the databases' MAX().
        unfiltered = replace(plan, dates=None, where=None, keys=None, window=None)
        best: Any = None
        nulls = 0
        for _, batch in self._scan(unfiltered, [field], 65_536):
            column = batch.column(0)
            nulls += column.null_count
            if pa.types.is_floating(column.type) and pc.any(pc.is_nan(column)).as_py():
                # Arrow's max skips NaN, and no comparison takes a NaN record: as PostgreSQL
                # (NaN above every number), the run then fails naming it (``freeze_window``).
                best = math.nan
                break
            value = pc.max(column).as_py()
            if value is not None and (best is None or value > best):
                best = value
        self._cursor_nulls = nulls
        return best

    def cursor_nulls(self) -> int | None:
        return self._cursor_nulls

    def close(self) -> None:
        return None

    def interrupt(self) -> None:
        # pyarrow cannot stop a read in flight from another thread: the scan ends before the
        # next batch.
        self._calls.interrupt()

    # -------------------------------------------------------------- errors

    def _explain(self, exc: BaseException, file: DataFile, several: bool = False) -> str:
        """Arrow's message with the file's relative name and the line of the problem."""
        text = clean(exc)
        quoted = re.search(r"input source '([^']+)'", text)
        name = file.path
        if quoted:
            name = self._unzipped.get(quoted.group(1)) or (
                quoted.group(1)[len(self._root) :].lstrip("/") or name
            )
            text = text[quoted.end() :].lstrip(": ").removeprefix("Invalid: ")
        elif several:
            name = f"{_parent(file.path)}/*"
        if _STRADDLING in text:  # Arrow's hint is a block size no setting changes
            return (
                f"{name}: a row is longer than 1 MiB, the block a CSV file is read in, so the "
                "file cannot be read; keep each row (with its quoted fields) under 1 MiB, or "
                "write such values in Parquet or JSONL"
            )
        where = ""
        if (row := CSV_ROW.search(text)) is not None:
            where = f" line {row.group(1)}"  # Arrow counts the header as row 1: a line number
        elif (row := JSON_ROW.search(text)) is not None:
            where = f" line {int(row.group(1)) + 1}"  # JSON rows count from 0
        return f"{name}{where}: {text}"


# Arrow's CSV reader on a file with no complete line (empty, or a header without a final
# newline): "CSV parse error: Empty CSV file or block: cannot infer number of columns".
_NO_LINE = "Empty CSV file or block"
# The block Arrow's CSV reader reads (and infers types from): its default, 1 MiB.
_BLOCK = 1 << 20
# Schema metadata of a header-only CSV file (``FilesSource._header_only``).
_HEADER_ONLY = b"egress.header_only"

# Arrow's CSV reader on a row longer than its block: "straddling object straddles two block
# boundaries (try to increase block size?)".
_STRADDLING = "straddles two block boundaries"


class _CsvGroup:
    """Consecutive scanned CSV batches, each with its file and its first row's place there."""

    def __init__(self) -> None:
        self.batches: list[pa.RecordBatch] = []
        self.parts: list[tuple[str, int, int]] = []  # (file, first row in the file, rows)
        self.rows = 0
        self._read: dict[str, int] = {}  # rows read of each file so far

    def add(self, path: str, batch: pa.RecordBatch) -> None:
        start = self._read.get(path, 0)
        self._read[path] = start + batch.num_rows
        self.batches.append(batch)
        self.parts.append((path, start, batch.num_rows))
        self.rows += batch.num_rows

    def line_of(self, row: int) -> tuple[str, int]:
        """The file and line (the header is line 1) of the group's ``row``."""
        for path, start, rows in self.parts:
            if row < rows:
                return path, start + row + 2
            row -= rows
        raise IndexError(row)

    def take_parts(self) -> list[tuple[str, int, int]]:
        """(file, offset in the group, rows) of each batch, and the group emptied."""
        taken, offset = [], 0
        for path, _, rows in self.parts:
            taken.append((path, offset, rows))
            offset += rows
        self.batches, self.parts, self.rows = [], [], 0
        return taken


# Arrow's JSON reader on a value of another type than the column's: "Column(/b) changed from
# string to number".
_CHANGED = re.compile(r"Column\(/([^)/]+)\) changed from")


def _refuse_extremes(path: str, batch: pa.RecordBatch) -> None:
    """Fail on a date or timestamp at its storage type's extreme (int64's for a timestamp,
    int32's for a date): the sinks write those as PostgreSQL's 'infinity' and '-infinity',
    which a file's real (sentinel) value is not."""
    for field, col in zip(batch.schema, batch.columns, strict=True):
        masks = infinity_masks(col) if can_be_infinite(col.type) else None
        if masks is None:
            continue
        largest = pc.any(masks[0]).as_py()
        bits = 64 if pa.types.is_timestamp(col.type) else 32
        value = 2 ** (bits - 1) - 1 if largest else -(2 ** (bits - 1))
        raise SourceError(
            f"{path}: column {field.name!r} holds {value} ({col.type}), the "
            f"{'largest' if largest else 'smallest'} {col.type} value, which Egress writes only "
            f"for PostgreSQL's {'' if largest else '-'}infinity; filter it out with a whereClause"
        )


# Arrow's CSV reader on a value its column's type cannot read (a boolean's 1, a date's
# 2026-02-29, a timestamptz without an offset) or on text that is not UTF-8: "In CSV column #1:
# Row #200002: CSV conversion error to bool: invalid value '1'".
_UNREAD = re.compile(
    r"In CSV column #(\d+): Row #\d+: CSV conversion error to ([^:]+): (?:invalid value '(.*)'"
    r"|expected (?:no|a) zone offset in '(.*?)'.*|invalid UTF8 data)$",
    re.DOTALL,
)


def _unread(
    text: str, natives: list[tuple[str, pa.Schema]], target: pa.Schema, several: str
) -> str | None:
    """``text`` naming the column and the value Arrow's CSV reader could not read, or None
    when it is no such refusal or the column is not known for sure. Arrow numbers the columns
    of the file it read (``natives``: each file's own), whose header may order them otherwise
    than another's: the column is the one at that place in the files whose column there has
    the type Arrow read it as, and when that is one file, it replaces the folder's ``several``
    (``orders/*``) that Arrow's scan error leaves."""
    found = _UNREAD.search(text)
    if found is None:
        return None
    index, wanted = int(found.group(1)), found.group(2)
    value = found.group(3) or found.group(4)
    read = csv_text_schema(target)
    placed = [
        (path, native.names[index])
        for path, native in natives
        if index < len(native.names) and native.names[index] in target.names
    ]
    typed = [(path, name) for path, name in placed if str(read.field(name).type) == wanted]
    names = {name for _, name in typed or placed}
    if len(names) != 1:
        return None
    name = names.pop()
    where = text[: found.start()]
    if len(typed) == 1 and where.startswith(f"{several} "):
        where = typed[0][0] + where.removeprefix(several)
    why = unreadable(target.field(name).type)
    return where + (not_utf8(name) if value is None else holds(name, value, why))


# Arrow's refusal to cast a value it would change: "Casting from timestamp[ns] to
# timestamp[us] would lose data: 1700000000123456789".
_LOSSY = re.compile(r"Casting from (\S+) to (\S+) would lose data: (-?\d+)")


def _lossy_cast(text: str, native: pa.Schema, target: pa.Schema) -> str | None:
    """``text`` naming the column(s) and the value Arrow would not cast without changing it,
    or None when it is no such refusal."""
    found = _LOSSY.search(text)
    if found is None:
        return _inexact_float(text, target)
    source, wanted, raw = found.groups()
    names = [
        f.name
        for f in target
        if f.name in native.names
        and str(native.field(f.name).type) == source
        and str(f.type) == wanted
    ]
    if not names:
        return None
    try:  # the raw integer as the column's own text (a nanosecond timestamp, say)
        typed = pa.array([int(raw)], pa.int64()).view(native.field(names[0]).type)
        value = str(pc.cast(typed, pa.string())[0].as_py())
    except (pa.ArrowException, OverflowError, ValueError):
        value = raw
    columns = " or ".join(repr(n) for n in names)
    where = text[: found.start()].rstrip(": ")
    return (
        f"{where}: column {columns} holds {value} ({source}), which {wanted} cannot hold"
        " without changing it; filter it out with a whereClause"
    )


# Arrow's refusal to cast an integer to a float64 that would change it (a folder whose files
# hold a column as integers and as floats): "Integer value 9007199254740993 not in range: …".
_INEXACT_FLOAT = re.compile(r"Integer value (-?\d+) not in range: -9007199254740992 to \d+")


def _inexact_float(text: str, target: pa.Schema) -> str | None:
    found = _INEXACT_FLOAT.search(text)
    if found is None:
        return None
    columns = " or ".join(repr(f.name) for f in target if pa.types.is_float64(f.type))
    where = text[: found.start()].rstrip(": ")
    return (
        f"{where}: column {columns} holds the integer {found.group(1)}, which float64 cannot"
        " hold without changing it"
    )
