"""The disaster drill's stages at N events on Kafka (issue 37), beside the raw loop in the same run.

A home on Kafka + Redis holds N signed events (bench_projector's fill: deployments and their
models' ArtifactRecorded), folded and checkpointed by `keel audit project`, the checkpoint handed
to a witness outside the home (`keel audit checkpoint --to`), a views snapshot written (`keel
audit snapshot`) and the audit API started once (its replica from that snapshot). Then, timed:

- loss: the Redis server stopped, its data directory deleted, an empty one started on the same
  port; the API's replica and snapshot directory deleted;
- rebuild: `keel audit rebuild` (the Redis views folded again from Kafka, trees and a checkpoint);
- verify: `keel audit verify --checkpoint <witness> --skip artifacts` (the synthetic events
  announce artifacts no store holds), which must say ok;
- first answer: `keel service run audit` started until its first answer (from the rebuilt Redis
  views), and until it answers from its own replica (folded from Kafka: its snapshot is gone);
- raw: a confluent-kafka consumer + bare fastavro over the same topics (bench_projector's
  raw_kafka_rate): the floor under any reader of this log.

Answers (serving at several times, CLI and API) are recorded before the loss and compared after.
Every stage runs as a user runs it: the CLI and the service as processes. Figures at 1M events
and where verify's time goes (bench_verify --whole): decision 0032, its session-14 section.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_projector import T0, fill, load_signer, raw_kafka_rate, signer_in
from bench.common import report
from keel.codec import Codec
from keel.schemas.registry import load_registry

KEEL = str(Path(sys.executable).with_name("keel"))
TOKEN = "drill-bench-t0k"


@contextmanager
def infra(d: Path) -> Iterator[tuple[str, Any]]:
    """(Kafka bootstrap, a Redis server of the drill's own): open servers on free ports
    (KEEL_KAFKA names a broker to use instead)."""
    from deploy.kafka_broker import Kafka
    from deploy.processes import free_port
    from deploy.redis_server import Redis

    kafka = None
    redis = Redis(d / "redis", free_port(), secure=False).start()
    try:
        bootstrap = os.environ.get("KEEL_KAFKA", "").removeprefix("kafka://")
        if not bootstrap:
            kafka = Kafka(d / "kafka", free_port(), free_port(), secure=False).start()
            bootstrap = kafka.bootstrap
        yield bootstrap, redis
    finally:
        if kafka:
            kafka.stop()
        redis.stop()


def keel(env: dict[str, str], *args: str) -> tuple[float, str]:
    """(wall seconds, stdout) of one `keel` command, which must succeed."""
    t0 = time.perf_counter()
    out = subprocess.run([KEEL, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    assert out.returncode == 0, f"keel {' '.join(args)}: {out.stderr[-2000:]}"
    return took, out.stdout


def api(env: dict[str, str], port: int, n: int) -> tuple[float, float, dict[str, Any]]:
    """Start the audit API: (seconds to its first answer, to answering from its replica at the
    log's end, its answers then)."""
    import httpx

    url, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {TOKEN}"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [KEEL, "service", "run", "audit", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    first = None
    try:
        while True:
            assert proc.poll() is None, "the audit API exited"
            try:
                r = httpx.get(url + "/v1/serving/f/prod", headers=auth, timeout=30)
            except httpx.HTTPError:
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                if first is None:
                    first = time.perf_counter() - t0
                fresh = r.json()["freshness"]
                if fresh["source"] == "replica" and fresh["lag"] == 0:
                    break
            time.sleep(0.05)
        ready = time.perf_counter() - t0
        return first or ready, ready, api_answers(url, auth, n)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def moments(n: int) -> list[str]:
    """Times across the history (deployment i is at T0 + i minutes)."""
    return [(T0 + timedelta(minutes=k * (n // 2) // 7 + 0.5)).isoformat() for k in range(8)]


def api_answers(url: str, auth: dict[str, str], n: int) -> dict[str, Any]:
    import httpx

    out = {}
    for at in moments(n):
        for env in ("prod", "staging"):
            r = httpx.get(f"{url}/v1/serving/f/{env}", params={"at": at}, headers=auth, timeout=30)
            doc = r.json()
            doc.pop("freshness", None)
            out[f"{env} {at}"] = doc
    return out


def cli_answers(env: dict[str, str], n: int) -> dict[str, Any]:
    out = {}
    for at in moments(n):
        for e in ("prod", "staging"):
            _, text = keel(
                env, "audit", "serving", "--family", "f", "--env", e, "--at", at, "--json"
            )
            out[f"{e} {at}"] = json.loads(text)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--name", default="disaster_drill", help="results file name")
    args = ap.parse_args(argv)
    n = args.events
    codec = Codec(load_registry())
    extra: dict[str, Any] = {"events": n, "load_average_start": os.getloadavg()}
    from deploy.processes import free_port
    from keel.log.kafka import KafkaEventLog, new_prefix

    with tempfile.TemporaryDirectory(prefix="keel-drill-") as tmp:
        d = Path(tmp)
        with infra(d) as (bootstrap, redis):
            signer = signer_in(d)
            prefix = new_prefix()
            # KEEL_FOLD kept: the bench runs either fold core (default: native where built)
            env = {
                k: v for k, v in os.environ.items() if not k.startswith("KEEL_") or k == "KEEL_FOLD"
            }
            env.update(
                KEEL_HOME=str(d / "home"),
                KEEL_PROJECT=str(d / "keel.toml"),
                KEEL_KEYS_DIR=str(d / "private"),
                KEEL_ADMIN_DIR=str(d / "admin"),
                KEEL_BUS=f"kafka://{bootstrap}?prefix={prefix}",
                KEEL_VIEWS=f"{redis.url}?namespace=drill:",
                KEEL_API_TOKEN=TOKEN,
            )
            (d / "home").mkdir()
            keel(env, "keys", "record", "--reason", "drill bench keys")
            signer = load_signer(d)  # again: keys.toml now names the admin key too
            log = KafkaEventLog(bootstrap, prefix=prefix)
            t0 = time.perf_counter()
            fill(log, codec, n, signer)
            extra["fill_s"] = time.perf_counter() - t0
            extra["project_s"], _ = keel(env, "audit", "project", "--json")
            witness = d / "witness"
            keel(env, "audit", "checkpoint", "--to", f"{witness}/")
            extra["snapshot_s"], made = keel(env, "audit", "snapshot", "--json")
            snapshots = Path(json.loads(made)["snapshot"]).parent
            first0, ready0, api_before = api(env, free_port(), n)
            extra["api_before"] = {"first_answer_s": first0, "replica_from_snapshot_s": ready0}
            cli_before = cli_answers(env, n)

            rows: list[dict[str, Any]] = []

            def row(stage: str, seconds: float, note: str = "") -> None:
                # the 1-minute load average as the stage ended: the machine is shared
                rows.append(
                    {
                        "stage": stage,
                        "seconds": seconds,
                        "events/s": n / seconds,
                        "load": os.getloadavg()[0],
                        "": note,
                    }
                )

            t0 = time.perf_counter()
            redis.stop()
            shutil.rmtree(redis.root)
            redis.start()
            shutil.rmtree(d / "home" / "replicas")
            shutil.rmtree(snapshots)
            row("loss", time.perf_counter() - t0, "Redis wiped; replica, snapshots deleted")
            took, _ = keel(env, "audit", "rebuild", "--json")
            row("rebuild", took, "keel audit rebuild (Kafka -> Redis)")
            took, text = keel(
                env,
                "audit",
                "verify",
                "--checkpoint",
                str(witness),
                "--skip",
                "artifacts",
                "--json",
            )
            verdict = json.loads(text)
            assert verdict["ok"], verdict["problems"]
            row("verify", took, f"ok, {verdict.get('events')} events, vs the witness")
            first, ready, api_after = api(env, free_port(), n)
            row("first answer", first, "API from the rebuilt Redis views")
            row("API on its replica", ready, "replica folded from Kafka (no snapshot)")
            cli_after = cli_answers(env, n)
            extra["answers_equal"] = {
                "cli": cli_after == cli_before,
                "api": api_after == api_before,
                "compared": len(cli_before) + len(api_before),
            }
            raw = raw_kafka_rate(bootstrap, prefix, codec, n)
            row("raw loop", n / raw, "confluent-kafka + fastavro, same topics")
            extra["raw_events_per_s"] = raw
            extra["fold"] = os.environ.get("KEEL_FOLD", "auto")
            extra["load_average_end"] = os.getloadavg()
            log.close()
    report(args.name, f"disaster drill on Kafka + Redis, {n:,} events", rows, extra)
    assert all(extra["answers_equal"][k] for k in ("cli", "api")), extra["answers_equal"]


if __name__ == "__main__":
    main()
