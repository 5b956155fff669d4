"""The audit API's time to ready on Kafka at N events (issue 35: "the audit API refolds the whole
log to start"), before and after, in the same run:

- full fold (before): a new replica folded from the log's beginning (what every fresh machine or
  pod did), from starting the watcher to the views at the log's end;
- snapshot + tail (after): the same replica started from the newest views snapshot (copied,
  its digest and signature checked, its trees checked against the checkpoint notes it holds:
  `restore_s`), then folding only the TAIL events appended after it;
- snapshot read in place (after): an API whose deployment has no projector views answers its
  first request from the newest verified snapshot, opened read-only where it lies (stale by the
  tail, and saying so), while the replica is copied from it and folds the tail;
- projector views (after): an API whose deployment has the projector's Redis views answers its
  first request from them at once (how stale it is in the answer), while the replica starts
  from the snapshot behind it.

The log: N signed events on Kafka (bench_projector's fill), the projector's views folded with
the audit key (checkpoints signed) into SQLite (snapshot source) and into Redis.
Target (issue 35): ready in <= 5 s at 1M events.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.bench_projector import fill, signer_in
from bench.common import kafka_and_redis, report
from keel.audit import snapshot as sn
from keel.audit.freshness import WatchedViews
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.schemas.registry import load_registry
from keel.settings import Settings
from keel.views.sqlite import SqliteViewStore


def fold(log: Any, views: Any, codec: Codec, signer: Any) -> float:
    t0 = time.perf_counter()
    Projector(log, views, codec, signer=signer).run()
    return time.perf_counter() - t0


def ready(settings: Settings, replica: Path, snapshots: Path | None) -> tuple[float, Any]:
    """Seconds from starting the watcher to the replica at the log's end."""
    t0 = time.perf_counter()
    watched = WatchedViews(settings, replica, snapshots=snapshots)
    took = time.perf_counter() - t0
    assert watched.check().lag == 0
    start = watched.start
    watched.close()
    return took, start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--tail", type=int, default=10_000, help="events after the snapshot")
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis views row")
    args = ap.parse_args(argv)
    n, tail = args.events, args.tail
    codec = Codec(load_registry())
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {"events": n, "tail": tail}
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.views.redis import RedisViewStore

    with kafka_and_redis() as (kafka, url), tempfile.TemporaryDirectory(prefix="keel-st-") as d:
        home = Path(d)
        signer = signer_in(home)
        prefix = new_prefix()
        log = KafkaEventLog(kafka, prefix=prefix)
        t0 = time.perf_counter()
        fill(log, codec, n, signer)
        extra["fill_s"] = time.perf_counter() - t0
        ns = f"start{time.time_ns()}:"
        settings = Settings(
            home=home / "pod",
            project=home / "keel.toml",
            bus=f"kafka://{kafka}?prefix={prefix}",
            views=f"{url}?namespace={ns}",
            keys_dir=home / "private",
        )
        (home / "pod").mkdir()
        # the projector's views, checkpointed, as SQLite: what `keel audit snapshot` reads
        source = SqliteViewStore(home / "projector-views.db")
        extra["projector_fold_sqlite_s"] = fold(log, source, codec, signer)
        t0 = time.perf_counter()
        made = sn.write(source, sn.snapshot_dir(settings), signer)
        extra["snapshot_write_s"] = time.perf_counter() - t0
        extra["snapshot_bytes"] = made.stat().st_size
        source.close()
        redis = RedisViewStore(url, namespace=ns)
        if not args.no_redis:
            extra["projector_fold_redis_s"] = fold(log, redis, codec, signer)
        # the tail: events after the snapshot (and after the Redis views: stale by `tail`)
        fill_tail(log, codec, n, tail, signer)

        before, _ = ready(settings, home / "full.db", None)
        rows.append(
            {
                "start": "full fold (before)",
                "ready_s": before,
                "restore_s": 0.0,
                "folded": n + tail,
                "first_s": 0.0,
            }
        )
        after, start = ready(settings, home / "snap.db", made.parent)
        assert start and start["snapshot"], start
        rows.append(
            {
                "start": "snapshot + tail (after)",
                "ready_s": after,
                "restore_s": float(start["seconds"]),
                "folded": n + tail - start["events"],
                "first_s": 0.0,
            }
        )
        # an API with no projector views (an empty namespace): the snapshot, read in place
        bare = settings.model_copy(update={"home": home / "pod2", "views": f"{url}?namespace=x:"})
        (home / "pod2").mkdir()
        sn.snapshot_dir(bare).parent.mkdir(parents=True)
        made.parent.rename(sn.snapshot_dir(bare))  # the same snapshots, moved: no second copy
        rows.append(api_row("snapshot read in place, then replica (after)", bare, tail))
        sn.snapshot_dir(bare).rename(made.parent)
        if not args.no_redis:
            rows.append(api_row("projector views, then replica (after)", settings, tail))
            redis.clear()
        log.close()
    report(
        "audit_start",
        f"audit API time to ready on Kafka, {n:,} events + {tail:,} after the snapshot",
        rows,
        {**extra, "target": "ready in <= 5 s at 1M events (issue 35)"},
    )


def api_row(label: str, settings: Settings, tail: int) -> dict[str, Any]:
    """An API started on `settings`: seconds to its first answer and to its replica."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel_services.audit.http import create_app

    t0 = time.perf_counter()
    with bootstrap(settings) as rt, TestClient(create_app(rt)) as api:
        r = api.get("/v1/serving/f/staging")
        first = time.perf_counter() - t0
        assert r.status_code == 200, r.text
        while api.get("/v1/families").json()["freshness"]["source"] != "replica":
            time.sleep(0.05)
        on_replica = time.perf_counter() - t0
    fresh = r.json()["freshness"]
    assert fresh["source"] != "replica" and fresh["lag"] > 0, fresh  # stale, and said
    return {
        "start": label,
        "ready_s": on_replica,
        "restore_s": 0.0,
        "folded": tail,
        "first_s": first,
    }


def fill_tail(log: Any, codec: Codec, n: int, tail: int, signer: Any) -> None:
    from keel.bootstrap import sign_all
    from tests.faults.test_projector_kill import events

    first = n // 2
    for start in range(first, first + tail // 2, 5000):
        batch = [e for i in range(start, min(first + tail // 2, start + 5000)) for e in events(i)]
        log.append(sign_all(signer, codec, batch))


if __name__ == "__main__":
    main()
