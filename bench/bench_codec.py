"""Codec encode/decode of N envelope events vs bare fastavro schemaless write/read, same run.

Target: keel codec >= 0.7x bare fastavro. Both sides encode the same records with the same
parsed schema; the codec adds the single-object header, the fingerprint lookup and the
trailing-bytes check.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from bench.common import median, report, timed
from keel.codec import HEADER_LEN, Codec
from keel.schemas.registry import load_registry


def records(n: int) -> list[dict[str, Any]]:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {
            "envelope": {
                "event_id": f"00000000-0000-4000-8000-{i:012d}",
                "event_type": "ModelDeployed",
                "occurred_at": t0 + timedelta(seconds=i),
                "producer": {
                    "service": "deploy",
                    "package_version": "0.1.0",
                    "code_version": "c" * 64,
                },
                "actor": "bench",
                "correlation_id": "run-1",
                "causation_id": None,
                "subject": f"fam/prod/{i % 100}",
            },
            "family": "fam",
            "env": "prod",
            "model_id": f"{i:064x}",
            "manifest_id": f"{i + 1:064x}",
            "eval_report_id": None,
            "promotion_event_id": None,
            "previous_model_id": None,
            "kind": "promotion",
        }
        for i in range(n)
    ]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    registry = load_registry()
    codec = Codec(registry)
    schema = registry.latest("ModelDeployed").parsed
    recs = records(args.events)

    def bare_encode() -> list[bytes]:
        out = []
        for r in recs:
            buf = BytesIO()
            schemaless_writer(buf, schema, r)
            out.append(buf.getvalue())
        return out

    def keel_encode() -> list[bytes]:
        enc = codec.encode
        return [enc("ModelDeployed", r) for r in recs]

    bare_bytes = bare_encode()
    keel_bytes = keel_encode()
    assert [b[HEADER_LEN:] for b in keel_bytes[:1000]] == bare_bytes[:1000]

    def bare_decode() -> None:
        for b in bare_bytes:
            schemaless_reader(BytesIO(b), schema, None)

    def keel_decode() -> None:
        dec = codec.decode
        for b in keel_bytes:
            dec(b)

    t = {name: median(timed(fn, args.repeat)) for name, fn in
         [("bare_encode", bare_encode), ("keel_encode", keel_encode), ("bare_decode", bare_decode), ("keel_decode", keel_decode)]}  # fmt: skip
    n = args.events
    rows = [
        {
            "op": "encode",
            "bare_ev_per_s": n / t["bare_encode"],
            "keel_ev_per_s": n / t["keel_encode"],
            "ratio": t["bare_encode"] / t["keel_encode"],
        },
        {
            "op": "decode",
            "bare_ev_per_s": n / t["bare_decode"],
            "keel_ev_per_s": n / t["keel_decode"],
            "ratio": t["bare_decode"] / t["keel_decode"],
        },
    ]
    avg = sum(map(len, keel_bytes)) / n
    report(
        "codec",
        f"codec, {n:,} ModelDeployed events (~{avg:.0f} B), median of {args.repeat}",
        rows,
        {"target": "ratio >= 0.7", "avg_bytes": avg},
    )


if __name__ == "__main__":
    main()
