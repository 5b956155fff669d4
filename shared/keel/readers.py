"""Read CSV, JSON Lines or Parquet into (index, record-or-ReadProblem) pairs.

A malformed record becomes a ReadProblem at its position (it is quarantined like any invalid
record); a file that cannot be read at all is one clear KeelError.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from keel.errors import KeelError


@dataclass(frozen=True)
class ReadProblem:
    """A record the reader could not even parse (bad JSON line, ragged CSV row, huge line)."""

    rule: str
    message: str
    raw: str


MAX_LINE = 1 << 20  # a record line over 1 MiB is quarantined, not parsed
BOM = b"\xef\xbb\xbf"
csv.field_size_limit(MAX_LINE)  # a field over 1 MiB is a csv.Error: quarantined, not parsed


def read_records(path: Path) -> Iterator[tuple[int, Any]]:
    """The file's records, lazily; everything that makes the whole file unusable (missing, empty,
    unknown format, unreadable header, duplicated columns, not Parquet) raises here, before the
    first record and before anything is stored."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise KeelError(
            f"{path} is not a readable file", hint="give the path of a CSV, JSONL or Parquet file"
        )
    if path.stat().st_size == 0:
        raise KeelError(
            f"{path} is empty: no records to ingest", hint="check the export that produced it"
        )
    if suffix in (".csv", ".jsonl", ".ndjson", ".json") and _looks_binary(path):
        raise KeelError(
            f"{path} holds NUL bytes: a binary file, not {suffix[1:].upper()} text",
            hint="export the data as UTF-8 CSV, JSON Lines or Parquet",
        )
    if suffix == ".csv":
        return _csv(path)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path)
    if suffix == ".json":
        return _json_array(path) if _starts_with(path, b"[") else _jsonl(path)
    if suffix == ".parquet":
        return _parquet(path)
    raise KeelError(
        f"{path}: unknown format {suffix or '(no suffix)'}", hint="use .csv, .jsonl or .parquet"
    )


def is_csv(path: Path) -> bool:
    """CSV values arrive as text: the validator coerces them to the contract's types."""
    return path.suffix.lower() == ".csv"


def _looks_binary(path: Path) -> bool:
    """The heuristic git and grep use: text never holds a NUL byte in its first 8 KiB."""
    with open(path, "rb") as f:
        return b"\x00" in f.read(8192)


def _starts_with(path: Path, prefix: bytes) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).removeprefix(BOM).lstrip()
    return head.startswith(prefix)


def _lines(path: Path) -> Iterator[bytes]:
    """Binary lines ending in LF, CRLF or a lone CR (old Mac exports); the BOM dropped."""
    with open(path, "rb") as f:
        first = True
        for raw in f:
            if first:
                raw, first = raw.removeprefix(BOM), False
            # JSON text never holds a raw CR (it must be escaped), so splitting on one is safe
            yield from (part for part in raw.replace(b"\r\n", b"\n").split(b"\r") if part)


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    n = 0
    for i, line in enumerate(_lines(path)):
        if len(line) > MAX_LINE:
            problem = ReadProblem(
                "format.line_too_long",
                f"line {i + 1} of {len(line):,} bytes exceeds {MAX_LINE:,}",
                line[:80].decode("utf-8", "replace"),
            )
            yield n, problem
            n += 1
            continue
        if not line.strip():
            continue
        try:
            yield n, orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield (
                n,
                ReadProblem("format.json", f"line {i + 1} is not JSON ({exc.msg})", _shown(line)),
            )
        except RecursionError:
            yield n, ReadProblem("format.json", f"line {i + 1} nests too deeply", _shown(line))
        n += 1


def _json_array(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        doc = orjson.loads(path.read_bytes().removeprefix(BOM))
    except (orjson.JSONDecodeError, RecursionError) as exc:
        raise KeelError(
            f"{path}: starts like a JSON array but is not valid JSON ({exc})",
            hint="fix the file, or write one record per line as JSON Lines (.jsonl)",
        ) from None
    return enumerate(doc)


def _shown(line: bytes) -> str:
    return line[:80].decode("utf-8", "replace")


def _csv(path: Path) -> Iterator[tuple[int, Any]]:
    """RFC 4180 through the csv module end to end: quoted fields may hold commas, quotes and
    line breaks. Invalid UTF-8 is carried through as surrogates and quarantined per record."""
    f = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    reader = csv.reader(f, strict=True, delimiter=csv_delimiter(path))
    try:
        header = _header(path, reader)
    except BaseException:
        f.close()
        raise
    return _csv_rows(f, reader, header)


DELIMITERS = ",;\t|"
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
SNIFF_BYTES = 64 << 10


def csv_delimiter(path: Path) -> str:
    """The delimiter of a CSV file, from its first 64 KiB (csv.Sniffer, limited to , ; tab |;
    a comma when the sample is ambiguous, e.g. a single column). Decided by the bytes only,
    so the same file always reads the same way."""
    with open(path, encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
        sample = f.read(SNIFF_BYTES)
    if len(sample) == SNIFF_BYTES and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only: a cut row would mislead
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def _header(path: Path, reader: Any) -> list[str]:
    try:
        header = next((row for row in reader if any(c.strip() for c in row)), None)
    except csv.Error as exc:
        raise KeelError(f"{path}: the header line is unreadable: {exc}") from None
    if header is None:
        raise KeelError(f"{path}: no header line", hint="the first line must name the columns")
    if any(_bad_text(c) for c in header):
        raise KeelError(
            f"{path}: the header line is unreadable: not UTF-8 text",
            hint="save the file as UTF-8 text whose first line names the columns",
        )
    header = [c.strip() for c in header]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if dupes:
        raise KeelError(
            f"{path}: the header names {', '.join(map(repr, dupes))} more than once; "
            "which column holds the value would be a guess",
            hint="rename or drop the duplicated columns and ingest again",
        )
    return header


def _csv_rows(f: Any, reader: Any, header: list[str]) -> Iterator[tuple[int, Any]]:
    n = 0
    with f:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield n, ReadProblem("format.csv", f"line {start}: {exc}", "")
                n += 1
                continue
            if not any(c.strip() for c in row):
                continue
            shown = ",".join(row)[:80].encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if any(_bad_text(c) for c in row):
                yield n, ReadProblem("format.utf8", f"line {start}: not UTF-8 text", shown)
            elif len(row) != len(header):
                yield (
                    n,
                    ReadProblem(
                        "format.csv_columns",
                        f"line {start} has {len(row)} columns, the header {len(header)}",
                        shown,
                    ),
                )
            else:
                yield n, dict(zip(header, row, strict=True))
            n += 1


def _bad_text(value: str) -> bool:
    """True when the value held bytes that are not UTF-8 (decoded as lone surrogates)."""
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _parquet(path: Path) -> Iterator[tuple[int, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise KeelError("reading Parquet needs pyarrow", hint="pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises many types for a bad file; name it and stop
        raise KeelError(f"{path} is not a readable Parquet file: {exc}") from exc
    return enumerate(table.to_pylist())
