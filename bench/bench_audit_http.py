"""The audit API over HTTP beside MLflow's REST server, in the same run (issue 21).

Keel: `keel service run audit` as its own process, on a log of N events (N/2 deployments of
one family, alternating prod and staging), views folded beforehand; embedded (SQLite log and
views) and, with --kafka, Kafka + Redis. MLflow: `mlflow server` (its own venv, sqlite backend)
with one registered model, P versions and the `prod` alias moved P times (P promotions).

Questions: "current prod" (Keel GET /v1/serving/f/prod; MLflow GET registered-models/alias) and
"prod at T" (Keel ?at=T; MLflow keeps no alias history, so the closest it can do is fetch every
version and take the newest created before T, which is what is timed). One keep-alive client
sends sequential GETs; then 8 clients (threads, one connection each) at once. The in-process
lookup (`view_queries.serving_at` on the same views) is the floor, measured in the same run.
Targets: Keel p50 <= MLflow p50 / 10 for both questions, Keel p99 <= 2 ms at 1M events.
The HTTP floor (uvicorn returning a fixed body, bench/asgi_floor.py) is measured in the same
run. On Kafka the API answers from its own replica of the views (decision 0012), which its
first start folds from the whole log: the time to ready is printed and kept (ready_s).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_projector import T0, fill, signer_in
from bench.common import kafka_and_redis, report
from keel.audit import view_queries as vq
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.port import EventLog
from keel.schemas.registry import load_registry
from keel.views.port import ViewStore

ROOT = Path(__file__).resolve().parents[1]
KEEL = str(Path(sys.executable).with_name("keel"))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], seconds: float = 1800) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", path)
            if c.getresponse().status < 500:
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"no answer on port {port} after {seconds} s")


@contextmanager
def process(cmd: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[None]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, probe, proc)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the client -------------------------------------------------------------------------------
Ask = Callable[[http.client.HTTPConnection, int], None]


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
    return body


def latencies(port: int, ask: Ask, n: int, clients: int) -> tuple[list[float], float]:
    """Per-request seconds over `clients` keep-alive connections, and requests per second."""
    out: list[list[float]] = [[] for _ in range(clients)]

    def run(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(5):  # warm the connection and the server's paths
            ask(conn, k)
        for i in range(n // clients):
            t0 = time.perf_counter()
            ask(conn, k * n + i)
            out[k].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    flat = sorted(x for xs in out for x in xs)
    return flat, len(flat) / wall


def pct(xs: list[float], q: float) -> float:
    return xs[min(len(xs) - 1, int(len(xs) * q))] * 1000


def measure(
    system: str, backend: str, question: str, port: int, ask: Ask, n: int
) -> list[dict[str, Any]]:
    rows = []
    for clients in (1, 8):
        lat, rps = latencies(port, ask, n, clients)
        rows.append(
            {
                "system": system,
                "backend": backend,
                "question": question,
                "clients": clients,
                "p50_ms": statistics.median(lat) * 1000,
                "p99_ms": pct(lat, 0.99),
                "req_per_s": rps,
            }
        )
    return rows


def times_in(span_minutes: int, k: int = 997) -> list[datetime]:
    rnd = random.Random(7)
    return [T0 + timedelta(minutes=rnd.uniform(0, span_minutes)) for _ in range(k)]


# -- Keel -------------------------------------------------------------------------------------
def keel_rows(
    backend: str, env: dict[str, str], n_events: int, requests: int
) -> list[dict[str, Any]]:
    port = free_port()
    cmd = [KEEL, "service", "run", "audit", "--port", str(port)]
    ats = [quote(t.isoformat()) for t in times_in(n_events // 2)]
    label = f"{backend}, {n_events:,} events"

    def current(conn: http.client.HTTPConnection, i: int) -> None:
        get(conn, "/v1/serving/f/prod")

    def at_t(conn: http.client.HTTPConnection, i: int) -> None:
        get(conn, f"/v1/serving/f/prod?at={ats[i % len(ats)]}")

    t0 = time.perf_counter()
    with process(cmd, env, port, "/v1/serving/f/prod"):
        # on Kafka the first start folds the whole log into the API's replica of the views
        ready = time.perf_counter() - t0
        print(f"keel audit API ({label}) ready after {ready:.1f} s", flush=True)
        rows = measure("keel", label, "current prod", port, current, requests) + measure(
            "keel", label, "prod at T", port, at_t, requests
        )
    return [{**r, "ready_s": ready} for r in rows]


def floor_rows(requests: int) -> list[dict[str, Any]]:
    """The same client against uvicorn serving a fixed body (bench/asgi_floor.py): the HTTP
    round trip on this machine, with nothing behind it."""
    port = free_port()
    cmd = [sys.executable, "-m", "bench.asgi_floor", str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "shared")])}

    def ask(conn: http.client.HTTPConnection, i: int) -> None:
        get(conn, "/v1/serving/f/prod")

    with process(cmd, env, port, "/"):
        return measure("bare ASGI (uvicorn)", "fixed body", "HTTP floor", port, ask, requests)


def in_process_row(views: ViewStore, backend: str, n_events: int) -> dict[str, Any]:
    ats = times_in(n_events // 2)
    lat = []
    for i in range(2000):
        t0 = time.perf_counter()
        vq.serving_at(views, "f", "prod", ats[i % len(ats)])
        lat.append(time.perf_counter() - t0)
    lat.sort()
    return {
        "system": "keel in-process",
        "backend": f"{backend}, {n_events:,} events",
        "question": "prod at T",
        "clients": 1,
        "p50_ms": statistics.median(lat) * 1000,
        "p99_ms": pct(lat, 0.99),
        "req_per_s": len(lat) / sum(lat),
    }


def prepare(log: EventLog, views: ViewStore, d: Path, n: int) -> None:
    codec = Codec(load_registry())
    signer = signer_in(d)
    fill(log, codec, n, signer)
    Projector(log, views, codec, signer=signer).run()


def keel_env(d: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(d / "home"),
        KEEL_PROJECT=str(d / "keel.toml"),
        KEEL_KEYS_DIR=str(d / "private"),
        **extra,
    )
    return env


# -- MLflow -----------------------------------------------------------------------------------
def mlflow_bin() -> Path:
    # the venv is shared with the MLflow bridge's tests and bench: built once, pinned
    from tests.mlflow_server import mlflow_python

    return mlflow_python().with_name("mlflow")


def post(conn: http.client.HTTPConnection, path: str, doc: dict[str, Any]) -> dict[str, Any]:
    conn.request("POST", path, json.dumps(doc), {"Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise RuntimeError(f"POST {path}: {r.status} {body[:300]!r}")
    out: dict[str, Any] = json.loads(body)
    return out


def mlflow_rows(promotions: int, requests: int) -> tuple[list[dict[str, Any]], float]:
    exe = mlflow_bin()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="keel-bench-mlflow-") as d:
        cmd = [
            str(exe),
            "server",
            "--backend-store-uri",
            f"sqlite:///{d}/mlflow.db",
            "--default-artifact-root",
            f"{d}/artifacts",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ]
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        api = "/api/2.0/mlflow"
        with process(cmd, env, port, "/health"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            post(conn, f"{api}/registered-models/create", {"name": "fam"})
            created: list[int] = []
            t0 = time.perf_counter()
            for i in range(promotions):
                v = post(
                    conn,
                    f"{api}/model-versions/create",
                    {"name": "fam", "source": f"s3://keel-bench/models/{i}"},
                )["model_version"]
                post(
                    conn,
                    f"{api}/registered-models/alias",
                    {"name": "fam", "alias": "prod", "version": v["version"]},
                )
                created.append(int(v["creation_timestamp"]))
            promote_ms = (time.perf_counter() - t0) / promotions * 1000
            rnd = random.Random(7)
            ats = [rnd.uniform(created[0], created[-1]) for _ in range(997)]
            search = (
                f"{api}/model-versions/search?filter={quote(chr(39).join(['name=', 'fam', '']))}"
                f"&max_results={max(1000, promotions)}"
            )

            def current(c: http.client.HTTPConnection, i: int) -> None:
                get(c, f"{api}/registered-models/alias?name=fam&alias=prod")

            def at_t(c: http.client.HTTPConnection, i: int) -> None:
                # no alias history: every version, then the newest created before T
                versions = json.loads(get(c, search))["model_versions"]
                t = ats[i % len(ats)]
                max(
                    (v for v in versions if int(v["creation_timestamp"]) <= t),
                    key=lambda v: int(v["creation_timestamp"]),
                    default=None,
                )

            label = f"sqlite, {promotions:,} promotions"
            rows = measure("mlflow", label, "current prod", port, current, requests)
            rows += measure("mlflow", label, "prod at T (approx.)", port, at_t, requests // 4)
    return rows, promote_ms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=1_000_000, help="Keel log size")
    ap.add_argument("--promotions", type=int, default=1000, help="MLflow registry size")
    ap.add_argument("--requests", type=int, default=2000, help="per question and client mode")
    ap.add_argument("--kafka", action="store_true", help="also Kafka + Redis")
    ap.add_argument("--no-mlflow", action="store_true")
    args = ap.parse_args(argv)
    rows: list[dict[str, Any]] = []
    extra: dict[str, Any] = {}
    if not args.no_mlflow:
        mrows, promote_ms = mlflow_rows(args.promotions, args.requests)
        rows += mrows
        extra["mlflow_promotion_ms"] = promote_ms
    rows += floor_rows(args.requests)
    for n in sorted({2 * args.promotions, args.events}):
        with tempfile.TemporaryDirectory(prefix="keel-bench-http-") as tmp:
            from keel.log.sqlite import SqliteEventLog
            from keel.views.sqlite import SqliteViewStore

            d = Path(tmp)
            (d / "home").mkdir()
            log = SqliteEventLog(d / "home" / "log.db")
            views = SqliteViewStore(d / "home" / "views.db")
            prepare(log, views, d, n)
            rows.append(in_process_row(views, "sqlite", n))
            log.close()
            views.close()
            rows += keel_rows("sqlite", keel_env(d), n, args.requests)
    if args.kafka:
        from keel.log.kafka import KafkaEventLog, new_prefix
        from keel.views.redis import RedisViewStore

        n = args.events
        with kafka_and_redis() as (bootstrap, url), tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "home").mkdir()
            prefix, ns = new_prefix(), f"http{time.time_ns()}:"
            klog = KafkaEventLog(bootstrap, prefix=prefix)
            rviews = RedisViewStore(url, namespace=ns)
            prepare(klog, rviews, d, n)
            rows.append(in_process_row(rviews, "kafka+redis", n))
            env = keel_env(
                d,
                KEEL_BUS=f"kafka://{bootstrap}?prefix={prefix}",
                KEEL_VIEWS=f"{url}?namespace={ns}",
            )
            rows += keel_rows("kafka+redis", env, n, args.requests)
            rviews.clear()
            klog.close()
    ratios = {}
    for q in ("current prod", "prod at T"):
        ml = [
            r["p50_ms"]
            for r in rows
            if r["system"] == "mlflow" and r["question"].startswith(q) and r["clients"] == 1
        ]
        for r in rows:
            if r["system"] == "keel" and r["question"] == q and r["clients"] == 1 and ml:
                ratios[f"{r['backend']}: {q}"] = ml[0] / r["p50_ms"]
    extra["mlflow_p50_over_keel_p50"] = ratios
    extra["targets"] = "keel p50 <= mlflow p50 / 10; keel p99 <= 2 ms at 1M events"
    report("audit_http", "audit answers over HTTP: Keel beside MLflow (same run)", rows, extra)
    for k, v in ratios.items():
        print(f"MLflow p50 / Keel p50, {k}: {v:.1f}x")


if __name__ == "__main__":
    main()
