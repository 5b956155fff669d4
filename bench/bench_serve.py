"""Single-prediction latency (p50/p99) and requests/s of `keel serve`, beside a bare FastAPI
endpoint calling the same model in the same run (loopback only, bounded request count), and the
hot-swap time (refresh that loads a newly deployed model)."""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import uvicorn
from fastapi import FastAPI

from bench.common import report
from keel.bootstrap import bootstrap
from keel.demo.story import FAMILY, monthly_batches
from keel.project import load_project
from keel.settings import Settings
from services.serve.app import Server, create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(app: FastAPI) -> str:
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error")
    threading.Thread(target=uvicorn.Server(config).run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/healthz", timeout=1)
            return url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def measure(url: str, body: dict[str, Any], n: int) -> tuple[float, float, float]:
    lat = []
    with httpx.Client(timeout=10) as c:
        for _ in range(50):  # warm-up
            c.post(url, json=body)
        t0 = time.perf_counter()
        for _ in range(n):
            s = time.perf_counter()
            r = c.post(url, json=body)
            lat.append(time.perf_counter() - s)
            assert r.status_code == 200, r.text
        wall = time.perf_counter() - t0
    lat.sort()
    return statistics.median(lat) * 1000, lat[int(n * 0.99)] * 1000, n / wall


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
        project = load_project(Path(f"{d}/w/keel.toml"))
        with bootstrap(Settings(home=Path(demo["home"]), bus="", views=""), create=False) as rt:
            server = Server(rt, project, FAMILY, "prod")
            keel_url = start(create_app(server)) + f"/v1/models/{FAMILY}/predict"
            bare = FastAPI()
            loaded = server.current
            assert loaded is not None

            @bare.post("/predict")
            def predict(payload: dict[str, Any]) -> dict[str, Any]:
                features = server.transform(payload)
                row = np.asarray([[features[c] for c in loaded.columns]], dtype=float)
                return {"probability": float(loaded.model.predict_proba(row)[0, 1])}

            bare_url = start(bare) + "/predict"
            body = dict(monthly_batches()[0][0])
            body.pop("record_id")
            body.pop("malignant")
            b50, b99, brps = measure(bare_url, body, args.requests)
            k50, k99, krps = measure(keel_url, body, args.requests)
            subprocess.run(
                [keel, "deploy", "rollback", "--family", FAMILY, "--env", "prod"],
                check=True,
                capture_output=True,
                env={"KEEL_HOME": demo["home"], "KEEL_PROJECT": f"{d}/w/keel.toml", "PATH": ""},
            )
            t0 = time.perf_counter()
            server.refresh()
            swap_ms = (time.perf_counter() - t0) * 1000
    rows = [
        {
            "endpoint": "bare FastAPI, same model",
            "p50_ms": b50,
            "p99_ms": b99,
            "req_per_s": brps,
            "ratio": 1.0,
        },
        {
            "endpoint": "keel serve (contract-derived validation)",
            "p50_ms": k50,
            "p99_ms": k99,
            "req_per_s": krps,
            "ratio": krps / brps,
        },
    ]
    report(
        "serve",
        f"prediction latency, {args.requests:,} sequential requests on loopback",
        rows,
        {"hot_swap_ms": swap_ms},
    )


if __name__ == "__main__":
    main()
