"""Flat cost of commands on a long history (issue 12): a write command (`keel ingest` of a
36-row file) and a query (`keel audit serving --at`) on a demo home with N events of synthetic
registry history added (ModelPromoted + ModelDeployed pairs, signed), at N = 1k, 100k, 1M.

Measured two ways, in the same run: in-process (the Python client, as the CLI and the HTTP APIs
call it) and as a whole CLI process (Python start-up included). The baseline row for the
process numbers is the same interpreter importing Keel's CLI and exiting (`keel version`).
Target: at 1M each costs within 1.3x of what it costs at 1k. Medians of `--repeat` runs after
one untimed warm-up round.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import report
from keel.audit.projector import Projector
from keel.audit.readmodel import ReadModel
from keel.bootstrap import bootstrap
from keel.events import envelope
from keel.events import generated as g
from keel.settings import Settings
from keel_services.entrypoints.client import Client  # ingests: the services record it
from keel_services.entrypoints.demo.story import monthly_batches, run_story, write_csv

KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "breast_cancer"
T0 = datetime(2020, 1, 1, tzinfo=UTC)  # synthetic history: before the demo's year


def history(i: int) -> list[Any]:
    """One synthetic promotion and its deployment (prod of the demo family, T0 + i minutes)."""
    at = T0 + timedelta(minutes=i)
    model = f"{i:064x}"

    def env(kind: str, service: str, cause: str | None = None) -> g.Envelope:
        return envelope(
            kind,
            subject=f"{FAMILY}/prod",
            service=service,
            code_version="bench",
            actor="bench",
            correlation_id="bench",
            occurred_at=at,
            causation_id=cause,
        )

    promoted = g.ModelPromoted(
        envelope=env("ModelPromoted", "promote"),
        family=FAMILY,
        model_id=model,
        env="prod",
        eval_report_id="e" * 64,
        metrics={"roc_auc": 0.95},
        gates=(),
        incumbent_model_id=None,
        incumbent_metrics={},
        reason="bench",
    )
    deployed = g.ModelDeployed(
        envelope=env("ModelDeployed", "deploy", promoted.envelope.event_id),
        family=FAMILY,
        env="prod",
        model_id=model,
        manifest_id="m" * 64,
        promotion_event_id=promoted.envelope.event_id,
        kind="promotion",
    )
    return [promoted, deployed]


def demo_home(d: Path) -> Settings:
    """The demo story in `d`/demo; settings that open its home (embedded backends)."""
    run_story(d / "demo", lambda _msg: None)
    return Settings(
        home=d / "demo" / "home", project=d / "demo" / "keel.toml", keys_dir=d / "demo" / "keys"
    )


def grow(settings: Settings, have: int, want: int) -> int:
    """Append synthetic history until the log holds `want` events; fold the views to the end
    (not measured: the projector service's job)."""
    with bootstrap(settings) as rt:
        for start in range(have // 2, want // 2, 5000):
            rt.publish([e for i in range(start, min(want // 2, start + 5000)) for e in history(i)])
        Projector(rt.log, rt.views, rt.codec, signer=rt.signer).run()
        return ReadModel(rt.views).applied()


def batch_file(d: Path, k: int) -> Path:
    """A fresh 36-row batch (different rows each time, so each ingest does real work)."""
    _, batches = monthly_batches()
    rows = [dict(r, mean_radius=float(r["mean_radius"]) + k * 1e-6) for r in batches[k % 12]]
    return write_csv(d / f"batch-{k}.csv", rows)


def med_ms(xs: list[float]) -> float:
    return statistics.median(xs) * 1000


def measure(settings: Settings, d: Path, repeat: int, tag: int) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(settings.home),
        KEEL_PROJECT=str(settings.project),
        KEEL_KEYS_DIR=str(settings.keys_dir),
    )
    at = "2024-06-01T00:00:00+00:00"  # inside the synthetic history at every size
    ingest_in, query_in, ingest_cli, query_cli, floor = [], [], [], [], []
    # One untimed round first: the steady state is measured, not the first touch of a file
    # that a bulk load just wrote (page cache, SQLite's WAL checkpoint).
    for k in range(-1, repeat):
        path = batch_file(d, tag * 100 + 20 + k)
        t0 = time.perf_counter()
        with Client(settings) as c:
            c.ingest(path, FAMILY, "2025-12-20")
        ingest_in.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        with Client(settings) as c:
            c.serving(FAMILY, "prod", at)
        query_in.append(time.perf_counter() - t0)
        path = batch_file(d, tag * 100 + 50 + k)
        for cmd, out in (
            (["ingest", str(path), "--family", FAMILY, "--at", "2025-12-20", "--json"], ingest_cli),
            (["audit", "serving", "--family", FAMILY, "--env", "prod", "--at", at], query_cli),
            (["version"], floor),
        ):
            t0 = time.perf_counter()
            subprocess.run([KEEL, *cmd], env=env, check=True, capture_output=True)
            out.append(time.perf_counter() - t0)
    for xs in (ingest_in, query_in, ingest_cli, query_cli, floor):
        del xs[0]  # the warm-up round
    return {
        "ingest_ms": med_ms(ingest_in),
        "serving_ms": med_ms(query_in),
        "ingest_cli_ms": med_ms(ingest_cli),
        "serving_cli_ms": med_ms(query_cli),
        "cli_floor_ms": med_ms(floor),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,100000,1000000")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="keel-bench-flat-") as tmp:
        d = Path(tmp)
        settings = demo_home(d)
        have = 0
        for tag, size in enumerate(int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            have = grow(settings, have, size)
            built = time.perf_counter() - t0
            row: dict[str, Any] = {"events": have}
            row.update(measure(settings, d, args.repeat, tag))
            row["build_s"] = built
            rows.append(row)
            print(row, flush=True)
    first = rows[0]
    for r in rows:
        for key in (
            "ingest_ms",
            "serving_ms",
            "ingest_cli_ms",
            "serving_cli_ms",
        ):
            r[key.replace("_ms", "_x")] = r[key] / first[key]
    report(
        "flat_cost",
        f"command cost vs history (demo home + synthetic registry history), median of {args.repeat}",
        rows,
        {
            "target": "at 1M within 1.3x of 1k (ratios *_x, each against the smallest size), in-process and as a CLI process"
        },
    )


if __name__ == "__main__":
    main()
