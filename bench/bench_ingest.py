"""Ingest boundary validation of N records (10% invalid, of varied kinds) on the embedded
default, beside bare fastavro validation of the same records in the same run.

Rows: Keel's compiled contract validator alone (partition into accepted / quarantined), bare
fastavro `validate` (types only: no ranges, no enums-by-value, no reasons), and the whole
`keel ingest` path for a JSONL file (read, validate, canonical dataset bytes, artifacts, one
RecordQuarantined event per bad record). Targets: >= 200k records/s and >= 0.5x bare.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.validation import validate

from bench.common import median, report, timed
from keel.contracts import compile_validator, load_contract
from keel_services.entrypoints.demo.story import FAMILY, monthly_batches, prepare_workdir
from keel_services.ingest.domain import partition

BREAKERS = [
    lambda r: {**r, "mean_radius": "n/a"},
    lambda r: {**r, "mean_area": -1.0},
    lambda r: {k: v for k, v in r.items() if k != "mean_texture"},
    lambda r: {**r, "malignant": 2},
    lambda r: {**r, "extra_column": 1},
    lambda r: {**r, "worst_area": float("nan")},
]


def make_records(n: int) -> list[dict[str, Any]]:
    holdout, batches = monthly_batches()
    base = holdout + [r for b in batches for r in b]
    rnd = random.Random(7)
    out = []
    for i in range(n):
        r = dict(base[i % len(base)])
        r["record_id"] = f"r{i}"
        out.append(BREAKERS[i % len(BREAKERS)](r) if rnd.random() < 0.10 else r)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--full-path", type=int, default=200_000, help="records for the whole-ingest row"
    )
    args = ap.parse_args(argv)
    n = args.records
    records = make_records(n)
    with tempfile.TemporaryDirectory(prefix="keel-bench-ingest-") as d:
        home, project_file = prepare_workdir(Path(d) / "wd")
        contract = load_contract(project_file.parent / "contracts" / FAMILY / "training.avsc")
        validator = compile_validator(contract)
        parsed = parse_schema(json.loads(contract.path.read_text()))
        ok = partition(enumerate(records), validator)
        t_keel = median(timed(lambda: partition(enumerate(records), validator), args.repeat))
        t_bare = median(
            timed(lambda: [validate(r, parsed, raise_errors=False) for r in records], args.repeat)
        )
        full = _full_ingest(home, project_file, records[: args.full_path], Path(d))
    rows = [
        {
            "path": "keel validator (partition)",
            "records_per_s": n / t_keel,
            "ratio_vs_bare": t_bare / t_keel,
        },
        {"path": "bare fastavro validate", "records_per_s": n / t_bare, "ratio_vs_bare": 1.0},
        {
            "path": f"keel ingest, whole path ({args.full_path:,} JSONL records)",
            "records_per_s": full,
            "ratio_vs_bare": full / (n / t_bare),
        },
    ]
    report(
        "ingest",
        f"ingest validation, {n:,} records ({len(ok.rejected):,} invalid), median of {args.repeat}",
        rows,
        {"targets": ">= 200k records/s and >= 0.5x bare"},
    )


def _full_ingest(home: Path, project_file: Path, records: list[dict[str, Any]], d: Path) -> float:
    from keel.bootstrap import bootstrap
    from keel.project import load_project
    from keel.settings import Settings
    from keel_services.entrypoints.bus import build_bus
    from keel_services.ingest.handlers import ingest_file

    src = d / "batch.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    with bootstrap(Settings(home=home, bus="", views="")) as rt:
        ctx = build_bus(rt, load_project(project_file), actor="bench").ctx
        from datetime import UTC, datetime

        t = timed(lambda: ingest_file(ctx, FAMILY, src, datetime(2025, 1, 1, tzinfo=UTC)), 1)[0]
    return len(records) / t


if __name__ == "__main__":
    main()
