"""Read CSV, JSON Lines, JSON arrays or Parquet into (index, record-or-ReadProblem) pairs.

A malformed record becomes a ReadProblem at its position (it is quarantined like any invalid
record); a file that cannot be read at all is one clear KeelError.

Memory stays bounded whatever the file holds (issue 33, item 8: a 0.27 MB Parquet file of 2M
rows took 7.8 GB): records are read one bounded piece at a time - a line or record over 1 MiB
is skipped to its end, never held whole - and a file past its `[ingest]` limits (records,
decoded bytes) is refused whole, before anything is stored.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from keel.errors import KeelError
from keel.project import IngestLimits


@dataclass(frozen=True)
class ReadProblem:
    """A record the reader could not even parse (bad JSON line, ragged CSV row, huge line)."""

    rule: str
    message: str
    raw: str


MAX_LINE = 1 << 20  # a record line over 1 MiB is quarantined, not parsed
BOM = b"\xef\xbb\xbf"
csv.field_size_limit(MAX_LINE)  # a field over 1 MiB is a csv.Error: quarantined, not parsed
CHUNK = 1 << 20  # JSON arrays are decoded from a window of this many characters at a time
# Parquet: rows decoded per batch, and rows turned into Python objects at once (at most this
# many decoded bytes): the Python objects, ~4x the decoded bytes, are what costs memory.
BATCH_ROWS = 4096
SLICE_BYTES = 4 << 20
# A Parquet page is decompressed whole before it is decoded: one column chunk of a row group
# may unpack to at most this, whatever [ingest] max_bytes allows in total.
MAX_UNPACKED_CHUNK = 256 << 20


class Budget:
    """What one reading has taken so far; past a limit the whole file is refused (KeelError),
    so nothing is stored half-way: the handler judges every record before storing any."""

    def __init__(self, path: Path, limits: IngestLimits) -> None:
        self.path, self.limits = path, limits
        self.rows = 0
        self.bytes = 0

    def take(self, nbytes: int = 0) -> None:
        self.rows += 1
        self.bytes += nbytes
        if self.rows > self.limits.max_rows:
            raise KeelError(
                f"{self.path}: more than {self.limits.max_rows:,} records; refused whole, "
                "nothing stored",
                hint="split it into smaller batches, or raise max_rows under [ingest] in "
                "keel.toml (memory and time grow with it)",
            )
        if self.bytes > self.limits.max_bytes:
            raise KeelError(
                f"{self.path}: its records decode to more than {self.limits.max_bytes:,} bytes; "
                "refused whole, nothing stored",
                hint="split it into smaller batches, or raise max_bytes under [ingest] in "
                "keel.toml (memory and time grow with it)",
            )


def read_records(path: Path, limits: IngestLimits | None = None) -> Iterator[tuple[int, Any]]:
    """The file's records, lazily; everything that makes the whole file unusable (missing, empty,
    unknown format, unreadable header, duplicated columns, not Parquet, over a limit that the
    file's size or metadata shows) raises here, before the first record and before anything is
    stored. A limit first passed while reading raises from the iterator (see Budget)."""
    limits = limits or IngestLimits.model_validate({})
    budget = Budget(path, limits)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise KeelError(
            f"{path} is not a readable file", hint="give the path of a CSV, JSONL or Parquet file"
        )
    size = path.stat().st_size
    if size == 0:
        raise KeelError(
            f"{path} is empty: no records to ingest", hint="check the export that produced it"
        )
    # Text decodes to about its own size, so its size is its decoded-size check; Parquet's
    # decoded size is counted as it is read (a small file may decode to gigabytes).
    if suffix in (".csv", ".jsonl", ".ndjson", ".json") and size > limits.max_bytes:
        raise KeelError(
            f"{path}: {size:,} bytes, over the {limits.max_bytes:,} one ingest may read; "
            "refused whole, nothing stored",
            hint="split it into smaller batches, or raise max_bytes under [ingest] in keel.toml",
        )
    if suffix in (".csv", ".jsonl", ".ndjson", ".json") and _looks_binary(path):
        raise KeelError(
            f"{path} holds NUL bytes: a binary file, not {suffix[1:].upper()} text",
            hint="export the data as UTF-8 CSV, JSON Lines or Parquet",
        )
    if suffix == ".csv":
        return _csv(path, budget)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl(path, budget)
    if suffix == ".json":
        return _json_array(path, budget) if _starts_with(path, b"[") else _jsonl(path, budget)
    if suffix == ".parquet":
        return _parquet(path, budget)
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


def _bounded_lines(path: Path) -> Iterator[bytes | int]:
    """Binary lines ending in LF, CRLF or a lone CR (old Mac exports), the BOM dropped; a line
    over MAX_LINE is read past chunk by chunk and comes as its length, never held whole."""
    pending, skipped, first = b"", 0, True  # skipped > 0: the length of a line read past
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if first:
                chunk, first = chunk.removeprefix(BOM), False
            # JSON text never holds a raw CR (it must be escaped), so splitting on one is safe
            *ended, last = _EOL.split(chunk)
            for part in ended:
                if skipped:
                    yield skipped + len(part)
                    skipped = 0
                else:
                    line, pending = pending + part, b""
                    yield line if len(line) <= MAX_LINE else len(line)
            if skipped:
                skipped += len(last)
            elif len(pending) + len(last) > MAX_LINE:
                skipped, pending = len(pending) + len(last), b""
            else:
                pending += last
    if skipped or pending:
        yield skipped or pending


_EOL = re.compile(rb"\r\n|\r|\n")


def _jsonl(path: Path, budget: Budget) -> Iterator[tuple[int, Any]]:
    n = 0
    for i, line in enumerate(_bounded_lines(path)):
        if isinstance(line, int):
            budget.take()
            problem = ReadProblem(
                "format.line_too_long", f"line {i + 1} of {line:,} bytes exceeds {MAX_LINE:,}", ""
            )
            yield n, problem
            n += 1
            continue
        if not line.strip():
            continue
        budget.take()
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


def _json_array(path: Path, budget: Budget) -> Iterator[tuple[int, Any]]:
    """The elements of a top-level JSON array, decoded one at a time from a bounded window:
    a whole-file parse of `[{},{},...]` builds millions of objects at once. An element that is
    not JSON, or longer than MAX_LINE, refuses the file: past it there is no telling where the
    next element starts."""
    try:
        f = open(path, encoding="utf-8-sig")  # noqa: SIM115 (closed by the generator)
        window = JsonWindow(f.read, f"{path}")
        window.expect_array()
    except BaseException:
        f.close()
        raise
    return _array_elements(f, window, budget)


def _array_elements(f: Any, window: JsonWindow, budget: Budget) -> Iterator[tuple[int, Any]]:
    with f:
        for n, value in enumerate(window.elements()):
            budget.take()
            yield n, value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json would accept them


class JsonWindow:
    """A JSON array read through `read(size) -> str`, one element at a time, with at most
    MAX_LINE + CHUNK characters held (also used on HTTP bodies, spooled to a file)."""

    _decode = json.JSONDecoder(parse_constant=_no_constant).raw_decode

    def __init__(self, read: Any, name: str) -> None:
        self.read, self.name = read, name
        self.buf, self.pos, self.eof = "", 0, False

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            more = self.read(CHUNK)
        except UnicodeDecodeError:
            raise KeelError(
                f"{self.name}: not UTF-8 text", hint="save the file as UTF-8 JSON"
            ) from None
        self.buf, self.pos = self.buf[self.pos :] + more, 0
        self.eof = not more
        return bool(more)

    def _next_char(self) -> str:
        """The next non-blank character (not consumed), or "" at the end."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf) or not self._fill():
                return self.buf[self.pos : self.pos + 1]

    def _refuse(self, what: str) -> KeelError:
        return KeelError(
            f"{self.name}: starts like a JSON array but {what}",
            hint="fix the file, or write one record per line as JSON Lines (.jsonl)",
        )

    def expect_array(self) -> None:
        if self._next_char() != "[":
            raise self._refuse("does not start with [")
        self.pos += 1

    def elements(self, then: str = "") -> Iterator[Any]:
        """The array's elements; after its closing ], only the characters of `then` (each
        perhaps after blanks: "}" closes {"records": [...]}) and blanks may follow."""
        n = 0
        if self._next_char() == "]":
            self.pos += 1
        else:
            while True:
                yield self._element(n)
                n += 1
                sep = self._next_char()
                self.pos += 1
                if sep == "]":
                    break
                if sep != ",":
                    raise self._refuse(f"element {n} is followed by {sep or 'the end'!r}")
        for closing in then:
            if self._next_char() != closing:
                raise self._refuse(f"does not close with {closing!r} after its ]")
            self.pos += 1
        if self._next_char():
            raise self._refuse("holds more after its closing ]")

    def _element(self, n: int) -> Any:
        self._next_char()
        while True:
            try:
                value, end = self._decode(self.buf, self.pos)
                # a value ending at the window's edge may go on (a number cut in two)
                if end < len(self.buf) or self.eof:
                    self.pos = end
                    return value
                problem = "is cut short"
            except (ValueError, RecursionError) as exc:
                problem = f"is not valid JSON ({exc})"
            if len(self.buf) - self.pos > MAX_LINE or not self._fill():
                raise self._refuse(f"element {n + 1} {problem} or longer than {MAX_LINE:,}")


def _shown(line: bytes) -> str:
    return line[:80].decode("utf-8", "replace")


class _LineTooLong(Exception):
    def __init__(self, line: int, size: int) -> None:
        super().__init__(f"line {line}: a record of over {size:,} characters exceeds {MAX_LINE:,}")


class _BoundedLines:
    """The CSV file's physical lines for csv.reader. A record that grows past MAX_LINE (one long
    line, or many lines of one quoted field) is read past to the end of its line without being
    held, and raises _LineTooLong from __next__; csv.reader starts afresh on its next call."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.number = 0  # physical lines read
        self.record = 0  # characters of the record being read

    def __iter__(self) -> _BoundedLines:
        return self

    def __next__(self) -> str:
        line: str = self.f.readline(MAX_LINE + 1)
        if not line:
            raise StopIteration
        self.number += 1
        self.record += len(line)
        if self.record > MAX_LINE:
            size, ended = self.record, line.endswith(("\n", "\r"))
            while not ended and (rest := self.f.readline(CHUNK)):
                size += len(rest)
                ended = rest.endswith(("\n", "\r"))
            self.record = 0
            raise _LineTooLong(self.number, size)
        return line


def _csv(path: Path, budget: Budget) -> Iterator[tuple[int, Any]]:
    """RFC 4180 through the csv module end to end: quoted fields may hold commas, quotes and
    line breaks. Invalid UTF-8 is carried through as surrogates and quarantined per record."""
    f = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")  # noqa: SIM115
    lines = _BoundedLines(f)
    reader = csv.reader(lines, strict=True, delimiter=csv_delimiter(path))
    try:
        header = _header(path, reader)
    except BaseException:
        f.close()
        raise
    return _csv_rows(f, lines, reader, header, budget)


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
    except (csv.Error, _LineTooLong) as exc:
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


def _csv_rows(
    f: Any, lines: _BoundedLines, reader: Any, header: list[str], budget: Budget
) -> Iterator[tuple[int, Any]]:
    n = 0
    with f:
        while True:
            start = lines.number + 1
            lines.record = 0
            try:
                row = next(reader)
            except StopIteration:
                return
            except _LineTooLong as exc:
                budget.take()
                yield n, ReadProblem("format.line_too_long", str(exc), "")
                n += 1
                continue
            except csv.Error as exc:
                budget.take()
                yield n, ReadProblem("format.csv", f"line {start}: {exc}", "")
                n += 1
                continue
            if not any(c.strip() for c in row):
                continue
            budget.take()
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


def _parquet(path: Path, budget: Budget) -> Iterator[tuple[int, Any]]:
    from keel.parquet_reader import parquet_records

    return parquet_records(path, budget)
