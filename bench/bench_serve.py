"""Single-prediction latency (p50/p99) and requests/s of `keel serve`, beside a bare FastAPI
endpoint calling the same model in the same run, each in its own process (one uvicorn worker),
at 1 and at 8 concurrent clients (asyncio + httpx on loopback, bounded request count); and the
hot-swap time (refresh that loads a newly deployed model). Also `keel serve` with its skew
statistics off (`[families.F.skew] window_seconds = 0`) beside the default (on), same run:
issue 16's target is on >= 0.9x off in requests/s."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import report
from keel.bootstrap import bootstrap
from keel.project import load_project
from keel.settings import Settings
from keel_services.entrypoints.demo.story import FAMILY, monthly_batches
from keel_services.serve.app import Server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{cmd[:3]} did not start")


async def _load(url: str, body: dict[str, Any], n: int, clients: int) -> tuple[list[float], float]:
    lat: list[float] = []
    left = n
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=10, limits=limits) as c:
        for _ in range(50):  # warm-up
            await c.post(url, json=body)

        async def client() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                s = time.perf_counter()
                r = await c.post(url, json=body)
                lat.append(time.perf_counter() - s)
                assert r.status_code == 200, r.text

        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        return lat, time.perf_counter() - t0


def measure(url: str, body: dict[str, Any], n: int, clients: int) -> tuple[float, float, float]:
    lat, wall = asyncio.run(_load(url, body, n, clients))
    lat.sort()
    return statistics.median(lat) * 1000, lat[int(len(lat) * 0.99)] * 1000, len(lat) / wall


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=2000)
    args = ap.parse_args(argv)
    keel = str(Path(sys.executable).with_name("keel"))
    with tempfile.TemporaryDirectory(prefix="keel-bench-serve-") as d:
        demo = json.loads(
            subprocess.run(
                [keel, "demo", "--json", "--workdir", f"{d}/w"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("KEEL_")},
            "KEEL_HOME": demo["home"],
            "KEEL_PROJECT": f"{d}/w/keel.toml",
            "KEEL_KEYS_DIR": demo["keys_dir"],  # the rollback below is signed as deploy
        }
        kp, bp, op = free_port(), free_port(), free_port()
        off = Path(f"{d}/w/keel-skew-off.toml")
        off.write_text(
            Path(f"{d}/w/keel.toml").read_text()
            + f"\n[families.{FAMILY}.skew]\nwindow_seconds = 0\n"
        )
        procs = [
            start([keel, "serve", "--family", FAMILY, "--port", str(kp)], env, kp),
            start(
                [keel, "serve", "--family", FAMILY, "--port", str(op)],
                {**env, "KEEL_PROJECT": str(off)},
                op,
            ),
            start(
                [
                    sys.executable,
                    "-m",
                    "bench.bare_serve",
                    demo["home"],
                    env["KEEL_PROJECT"],
                    str(bp),
                ],
                env,
                bp,
            ),
        ]
        body = dict(monthly_batches()[0][0])
        body.pop("record_id")
        body.pop("malignant")
        rows = []
        skew_on_vs_off: dict[int, float] = {}
        try:
            for clients in (1, 8):
                b50, b99, brps = measure(
                    f"http://127.0.0.1:{bp}/predict", body, args.requests, clients
                )
                k50, k99, krps = measure(
                    f"http://127.0.0.1:{kp}/v1/models/{FAMILY}/predict",
                    body,
                    args.requests,
                    clients,
                )
                o50, o99, orps = measure(
                    f"http://127.0.0.1:{op}/v1/models/{FAMILY}/predict",
                    body,
                    args.requests,
                    clients,
                )
                rows += [
                    {
                        "endpoint": "bare FastAPI, same model",
                        "clients": clients,
                        "p50_ms": b50,
                        "p99_ms": b99,
                        "req_per_s": brps,
                        "ratio": 1.0,
                    },
                    {
                        "endpoint": "keel serve (contract-derived validation)",
                        "clients": clients,
                        "p50_ms": k50,
                        "p99_ms": k99,
                        "req_per_s": krps,
                        "ratio": krps / brps,
                    },
                    {
                        "endpoint": "keel serve, skew statistics off",
                        "clients": clients,
                        "p50_ms": o50,
                        "p99_ms": o99,
                        "req_per_s": orps,
                        "ratio": orps / brps,
                    },
                ]
                skew_on_vs_off[clients] = krps / orps
        finally:
            for p in procs:
                p.terminate()
                p.wait(timeout=30)
        project = load_project(Path(f"{d}/w/keel.toml"))
        with bootstrap(Settings(home=Path(demo["home"]), bus="", views=""), create=False) as rt:
            server = Server(rt, project, FAMILY, "prod")
            subprocess.run(
                [keel, "deploy", "rollback", "--family", FAMILY, "--env", "prod"],
                check=True,
                capture_output=True,
                env=env,
            )
            t0 = time.perf_counter()
            server.refresh()
            swap_ms = (time.perf_counter() - t0) * 1000
    report(
        "serve",
        f"prediction latency, {args.requests:,} requests per row on loopback",
        rows,
        {"hot_swap_ms": swap_ms, "skew_stats_on_vs_off_req_per_s": skew_on_vs_off},
    )


if __name__ == "__main__":
    main()
