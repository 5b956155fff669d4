"""Signatures on events: per-event Ed25519 against chunk signatures (decision 0009).

Same run, same events (the projector benchmark's mix, ~320 B each):
- raw: sha256 of every event (the floor: any scheme hashes each event once);
- per-event: one Ed25519 sign / verify per event (cryptography);
- chunked: Keel's Signer (a chunk tree per SIGN_CHUNK events, one signature per chunk) and
  Trust.check per event with a cold cache (one verification per chunk, hashes per event).
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median, report
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.schemas.registry import load_registry
from keel.signing import SIGN_CHUNK, Signer, Trust, create_key, load_private, load_trust
from tests.faults.test_projector_kill import events


def rate(n: int, fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return n / median(times)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=20_000)
    args = ap.parse_args(argv)
    codec = Codec(load_registry())
    values = [to_outgoing(codec, e).value for i in range(args.events // 2) for e in events(i)]
    n = len(values)
    with tempfile.TemporaryDirectory() as d:
        project = Path(d) / "keel.toml"
        project.write_text('[identities.t]\nemits = ["*"]\n')
        create_key("t", Path(d) / "keys.toml", Path(d) / "private")
        trust = load_trust(Path(d) / "keys.toml", project)
        signer = Signer(trust, load_private(Path(d) / "private"))
    private = next(iter(signer.private.values()))
    public = private.public_key()
    items = [("t", "ArtifactRecorded", v) for v in values]
    sigs = signer.sign(items)
    single = [private.sign(v) for v in values]

    def verify_each() -> None:
        for v, s in zip(values, single, strict=True):
            public.verify(s, v)

    def check_chunked() -> None:
        cold = Trust(trust.keys.values(), trust.roles)
        for v, s in zip(values, sigs, strict=True):
            assert cold.check(v, s, "ArtifactRecorded").problem is None

    raw = rate(n, lambda: [hashlib.sha256(v).digest() for v in values])
    rows = [
        {
            "scheme": "raw sha256 per event",
            "sign_ev_per_s": raw,
            "verify_ev_per_s": raw,
            "bytes_per_event": 0,
        },
        {
            "scheme": "Ed25519 per event",
            "sign_ev_per_s": rate(n, lambda: [private.sign(v) for v in values], 1),
            "verify_ev_per_s": rate(n, verify_each, 1),
            "bytes_per_event": 64,
        },
        {
            "scheme": f"chunks of {SIGN_CHUNK} (Keel)",
            "sign_ev_per_s": rate(n, lambda: signer.sign(items)),
            "verify_ev_per_s": rate(n, check_chunked),
            "bytes_per_event": sum(map(len, sigs)) // n,
        },
    ]
    for r in rows[1:]:
        r["verify_vs_raw"] = r["verify_ev_per_s"] / raw
    rows[0]["verify_vs_raw"] = 1.0
    report("signing", f"event signatures, {n:,} events", rows)


if __name__ == "__main__":
    main()
