"""OpenLineage export rate (issue 16): `keel lineage export --openlineage file:...` over a demo
home with N events of synthetic registry history (bench_flat_cost's), beside the raw baseline
in the same run: reading and decoding the same log with signature checks and nothing else.
`--home DIR` reuses a home built before (e.g. by bench_flat_cost) instead of building one."""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_flat_cost import grow
from bench.common import report
from keel.bootstrap import bootstrap
from keel.consume import trusted_events
from keel.openlineage import Sink, mapper_for
from keel.settings import Settings
from keel_services.entrypoints.demo.story import run_story


def measure(settings: Settings, out: Path) -> dict[str, Any]:
    with bootstrap(settings, create=False) as rt:
        t0 = time.perf_counter()
        n = sum(1 for _ in trusted_events(rt.codec, rt.trust, rt.log.read()))
        raw = time.perf_counter() - t0
        sink, mapper = Sink(f"file:{out}"), mapper_for(rt, settings.project)
        t0 = time.perf_counter()
        sent = 0
        for event in trusted_events(rt.codec, rt.trust, rt.log.read()):
            for run_event in mapper.events(event):
                sink.emit(run_event)
                sent += 1
        sink.close()
        export = time.perf_counter() - t0
    return {
        "keel_events": n,
        "run_events": sent,
        "read_decode_s": raw,
        "export_s": export,
        "keel_events_per_s": n / export,
        "run_events_per_s": sent / export,
        "export_vs_read": raw / export,
        "file_mb": out.stat().st_size / 1e6,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--home", type=Path, help="a demo workdir with history already in it")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="keel-bench-ol-") as tmp:
        d = Path(tmp)
        wd = args.home or d / "demo"
        if args.home is None:
            run_story(wd, lambda _msg: None)
        settings = Settings(home=wd / "home", project=wd / "keel.toml", keys_dir=wd / "keys")
        if args.home is None:
            grow(settings, 0, args.events)
        row = measure(settings, d / "lineage.jsonl")
    report(
        "openlineage",
        "OpenLineage export to a file (run events = START + COMPLETE per run)",
        [row],
        {"baseline": "read_decode_s: the same log read, decoded and signature-checked only"},
    )


if __name__ == "__main__":
    main()
