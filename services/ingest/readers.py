"""Read CSV, JSON Lines or Parquet into (index, record-or-ReadProblem) pairs.

A malformed record becomes a ReadProblem at its position (it is quarantined like any invalid
record); a file that cannot be read at all is one clear KeelError.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from keel.errors import KeelError
from services.ingest.domain import ReadProblem

MAX_LINE = 1 << 20  # a record line over 1 MiB is quarantined, not parsed


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise KeelError(
            f"{path} is not a readable file", hint="give the path of a CSV, JSONL or Parquet file"
        )
    if path.stat().st_size == 0:
        raise KeelError(
            f"{path} is empty: no records to ingest", hint="check the export that produced it"
        )
    if suffix == ".csv":
        return _csv(path)
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _jsonl(path)
    if suffix == ".parquet":
        return _parquet(path)
    raise KeelError(
        f"{path}: unknown format {suffix or '(no suffix)'}", hint="use .csv, .jsonl or .parquet"
    )


def _text_lines(path: Path) -> Iterator[tuple[int, str | ReadProblem]]:
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if len(line) > MAX_LINE:
                yield (
                    i,
                    ReadProblem(
                        "format.line_too_long",
                        f"line of {len(line):,} bytes exceeds {MAX_LINE:,}",
                        line[:80].decode("utf-8", "replace"),
                    ),
                )
                continue
            try:
                yield i, line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield (
                    i,
                    ReadProblem("format.utf8", f"not UTF-8 text ({exc.reason})", repr(line[:80])),
                )


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    n = 0
    for i, line in _text_lines(path):
        if isinstance(line, ReadProblem):
            yield n, line
            n += 1
            continue
        if not line.strip():
            continue
        try:
            yield n, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield n, ReadProblem("format.json", f"line {i + 1} is not JSON ({exc.msg})", line[:80])
        except RecursionError:
            yield n, ReadProblem("format.json", f"line {i + 1} nests too deeply", line[:80])
        n += 1


def _csv(path: Path) -> Iterator[tuple[int, Any]]:
    header: list[str] | None = None
    n = 0
    for i, line in _text_lines(path):
        if isinstance(line, ReadProblem):
            if header is None:
                raise KeelError(
                    f"{path}: the header line is unreadable: {line.message}",
                    hint="save the file as UTF-8 text whose first line names the columns",
                )
            yield n, line
            n += 1
            continue
        if not line.strip():
            continue
        try:
            row = next(csv.reader(io.StringIO(line)))
        except (csv.Error, StopIteration) as exc:
            yield n, ReadProblem("format.csv", f"line {i + 1}: {exc}", line[:80])
            n += 1
            continue
        if header is None:
            header = row
            continue
        if len(row) != len(header):
            yield (
                n,
                ReadProblem(
                    "format.csv_columns",
                    f"line {i + 1} has {len(row)} columns, the header {len(header)}",
                    line[:80],
                ),
            )
        else:
            yield n, dict(zip(header, row, strict=True))
        n += 1
    if header is None:
        raise KeelError(f"{path}: no header line", hint="the first line must name the columns")


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise KeelError("reading Parquet needs pyarrow", hint="pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a bad file; name it and stop
        raise KeelError(f"{path} is not a readable Parquet file: {exc}") from exc
    yield from enumerate(table.to_pylist())
