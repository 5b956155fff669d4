"""Benchmark plumbing: time things, print a table, write JSON. Benchmarks are not tests."""

from __future__ import annotations

import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).resolve().parent / "results"


def timed(fn: Callable[[], Any], repeat: int = 3) -> list[float]:
    """Wall seconds of `repeat` runs of fn."""
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def report(
    name: str, title: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> Path:
    """Print rows as a table and write them, with machine facts, to bench/results/<name>.json."""
    table = Table(title=title)
    cols = list(rows[0]) if rows else []
    for c in cols:
        table.add_column(c, justify="right" if isinstance(rows[0][c], (int, float)) else "left")
    for r in rows:
        table.add_row(
            *(
                f"{v:,.3f}" if isinstance(v, float) else f"{v:,}" if isinstance(v, int) else str(v)
                for v in r.values()
            )
        )
    Console().print(table)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    doc = {
        "benchmark": name,
        "when": datetime.now(UTC).isoformat(),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "rows": rows,
        **(extra or {}),
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")
    Console().print(f"wrote {path}")
    return path


@contextmanager
def kafka_and_redis() -> Iterator[tuple[str, str]]:
    """(bootstrap, redis URL): from KEEL_KAFKA / KEEL_REDIS, else the local launcher on free ports."""
    from deploy.kafka_broker import Kafka
    from deploy.processes import free_port
    from deploy.redis_server import Redis

    with tempfile.TemporaryDirectory(prefix="keel-bench-infra-") as d:
        kafka = redis = None
        try:
            bootstrap = os.environ.get("KEEL_KAFKA", "").removeprefix("kafka://")
            if not bootstrap:
                kafka = Kafka(Path(d) / "kafka", free_port(), free_port(), secure=False).start()
                bootstrap = kafka.bootstrap
            url = os.environ.get("KEEL_REDIS", "")
            if not url:
                redis = Redis(Path(d) / "redis", free_port(), secure=False).start()
                url = redis.url
            yield bootstrap, url
        finally:
            if kafka:
                kafka.stop()
            if redis:
                redis.stop()
