"""Parquet records in bounded batches (pyarrow, imported lazily: an optional dependency).

A Parquet file is small for what it decodes to: dictionary and run-length encoding turn 2M rows
of one repeated value into 0.27 MB, which `read_table(...).to_pylist()` turned into 7.8 GB of
Python objects (issue 33, item 8). Here the metadata is checked before anything is decoded
(records, unpacked sizes, flat columns), text columns stay dictionary-encoded while batches are
measured, and rows become Python objects a few MiB at a time, counted against the limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keel.errors import KeelError
from keel.readers import (
    BATCH_ROWS,
    MAX_LINE,
    MAX_UNPACKED_CHUNK,
    SLICE_BYTES,
    Budget,
    ReadProblem,
)


def parquet_records(path: Path, budget: Budget) -> Iterator[tuple[int, Any]]:
    """Raises at once for a file that is not Parquet, holds nested columns, or whose metadata
    shows it over a limit; the rows follow lazily (a page that fails to decode raises then)."""
    from keel.extras import need

    need("parquet", "pyarrow")
    import pyarrow.parquet as pq

    try:
        schema = pq.ParquetFile(path).schema_arrow
        text = [f.name for f in schema if _is_text(f.type)]
        # Text columns decoded as dictionaries: one copy of a repeated value, not one per row.
        pf = pq.ParquetFile(path, read_dictionary=text)
    except Exception as exc:  # pyarrow raises many types for a bad file; name it and stop
        raise KeelError(f"{path} is not a readable Parquet file: {exc}") from exc
    _check_metadata(path, pf, budget)
    return _rows(path, pf, budget)


def _is_text(t: Any) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
    )


def _check_metadata(path: Path, pf: Any, budget: Budget) -> None:
    import pyarrow as pa

    nested = [f.name for f in pf.schema_arrow if pa.types.is_nested(f.type)]
    if nested:
        raise KeelError(
            f"{path}: column(s) {', '.join(map(repr, nested))} hold lists, structs or maps; "
            "a contract's fields are flat values",
            hint="flatten those columns (or drop them) in the export and ingest again",
        )
    meta, limits = pf.metadata, budget.limits
    if meta.num_rows > limits.max_rows:
        raise KeelError(
            f"{path}: {meta.num_rows:,} records, over the {limits.max_rows:,} one ingest may "
            "read; refused whole, nothing stored",
            hint="split it into smaller batches, or raise max_rows under [ingest] in keel.toml",
        )
    unpacked = 0
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            unpacked += chunk.total_uncompressed_size
            if chunk.total_uncompressed_size > MAX_UNPACKED_CHUNK:
                raise KeelError(
                    f"{path}: column {chunk.path_in_schema!r} of row group {g} unpacks to "
                    f"{chunk.total_uncompressed_size:,} bytes, over {MAX_UNPACKED_CHUNK:,}; "
                    "refused whole, nothing stored",
                    hint="write the file with smaller row groups (pyarrow: row_group_size=)",
                )
    if unpacked > limits.max_bytes:
        raise KeelError(
            f"{path}: unpacks to {unpacked:,} bytes, over the {limits.max_bytes:,} one ingest "
            "may read; refused whole, nothing stored",
            hint="split it into smaller batches, or raise max_bytes under [ingest] in keel.toml",
        )


def _rows(path: Path, pf: Any, budget: Budget) -> Iterator[tuple[int, Any]]:
    n = 0
    batches = pf.iter_batches(batch_size=BATCH_ROWS)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except Exception as exc:  # a corrupt page: the file is unusable, nothing is stored
            raise KeelError(f"{path} is not a readable Parquet file: {exc}") from exc
        sizes = row_sizes(batch)
        start = 0
        while start < batch.num_rows:
            if sizes[start] > MAX_LINE:
                budget.take(sizes[start])
                yield (
                    n,
                    ReadProblem(
                        "format.line_too_long",
                        f"row {n + 1} decodes to {sizes[start]:,} bytes, over {MAX_LINE:,}",
                        "",
                    ),
                )
                n, start = n + 1, start + 1
                continue
            stop, taken = start, 0
            while stop < batch.num_rows and sizes[stop] <= MAX_LINE:
                if taken + sizes[stop] > SLICE_BYTES and stop > start:
                    break
                taken += sizes[stop]
                stop += 1
            for i, record in enumerate(batch.slice(start, stop - start).to_pylist()):
                budget.take(sizes[start + i])
                yield n, record
                n += 1
            start = stop


def row_sizes(batch: Any) -> list[int]:
    """Each row's decoded size in bytes (text by its length, other values by their width),
    measured on the Arrow batch before any value becomes a Python object."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    total = np.zeros(batch.num_rows, dtype=np.int64)
    for col in batch.columns:
        t = col.type
        if pa.types.is_dictionary(t):
            lengths = pc.binary_length(col.dictionary).take(col.indices)
        elif _is_text(t):
            lengths = pc.binary_length(col)
        else:
            try:
                total += max(t.bit_width // 8, 1)
            except ValueError:  # no fixed width (e.g. null): count a word
                total += 8
            continue
        total += lengths.fill_null(0).to_numpy(zero_copy_only=False)
    return [int(x) for x in total.tolist()]
