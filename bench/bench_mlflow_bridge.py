"""The MLflow bridge: deliveries per second, and the correctness table Keel vs MLflow vs truth.

1. Throughput: `keel service run mlflow-bridge` on a fresh embedded home (unsigned project),
   fed N signed alias-move deliveries over one keep-alive HTTP connection; each is in the log
   before its 200 (one append per delivery).
2. Correctness: a real `mlflow server` (3.17.2, SQLite) with the bridge subscribed; the prod
   alias moves through versions with rollbacks; at the midpoint of every interval, the truth
   (the driver's record), Keel's `audit serving --at T`, and MLflow's best answer (no alias
   history: the newest version created before T) side by side.
3. The gate and the model files (issue 38, items 2 and 3): a home whose prod has a policy
   (`[mlflow.gates]`, tracking URI set) takes version deliveries whose source is a real logged
   model (each read from the tracking server's artifact root, tarred and stored) and alias
   moves judged by the policy (each reads the version's run from the tracking server).

    python -m bench.bench_mlflow_bridge [--deliveries 500] [--gated 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import report
from keel_services.mlflow_bridge import domain
from keel_services.mlflow_bridge.handlers import model_id
from keel_services.mlflow_bridge.tracking import Tracking
from tests.demo_home import KEEL
from tests.e2e.test_mlflow_bridge import Driver
from tests.mlflow_server import free_port, mlflow_server, wait_http

SECRET = "bench-secret"
MOVES = ["1", "2", "3", "2", "4", "1", "4", "3"]  # rollbacks: 2 after 3, 1 after 4, 3 after 4


def bridge(
    home: Path, project: str = "[families]\n"
) -> tuple[subprocess.Popen[bytes], int, dict[str, str]]:
    (home / "keel.toml").write_text(project)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(home / ".keel"),
        KEEL_PROJECT=str(home / "keel.toml"),
        KEEL_MLFLOW_WEBHOOK_SECRET=SECRET,
        KEEL_ACTOR="bench",
        KEEL_WITNESS_DIR=str(home / "witness"),
    )
    port = free_port()
    cmd = [KEEL, "service", "run", "mlflow-bridge", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(port, "/healthz", proc, 120)
    return proc, port, env


def throughput(n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="keel-bench-mlflow-bridge-") as d:
        proc, port, _ = bridge(Path(d))
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t0 = time.perf_counter()
            for i in range(n):
                body = json.dumps(
                    {
                        "entity": "model_version_alias",
                        "action": "created",
                        "timestamp": datetime.now(UTC).isoformat(),
                        "data": {"name": "fam", "alias": "prod", "version": str(i % 7 + 1)},
                    }
                ).encode()
                stamp = str(int(time.time()))
                headers = {
                    "Content-Type": "application/json",
                    "X-MLflow-Delivery-Id": f"bench-{i}",
                    "X-MLflow-Timestamp": stamp,
                    "X-MLflow-Signature": domain.expected_signature(
                        SECRET, f"bench-{i}", stamp, body
                    ),
                }
                conn.request("POST", "/v1/mlflow/webhooks", body, headers)
                r = conn.getresponse()
                r.read()
                if r.status != 200:
                    raise RuntimeError(f"delivery {i}: {r.status}")
            seconds = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(30)
    return {"deliveries": n, "seconds": seconds, "per_second": n / seconds}


def deliver(conn: http.client.HTTPConnection, delivery: str, doc: dict[str, Any]) -> None:
    """One signed delivery; raises unless the bridge answered 200 with it recorded."""
    body = json.dumps({**doc, "timestamp": datetime.now(UTC).isoformat()}).encode()
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": stamp,
        "X-MLflow-Signature": domain.expected_signature(SECRET, delivery, stamp, body),
    }
    conn.request("POST", "/v1/mlflow/webhooks", body, headers)
    r = conn.getresponse()
    answer = json.loads(r.read())
    if r.status != 200 or answer.get("status") != "recorded":
        raise RuntimeError(f"delivery {delivery}: {r.status} {answer}")


def gated(n: int) -> dict[str, Any]:
    """Versions with real files, then alias moves judged by a policy, per second."""
    with (
        tempfile.TemporaryDirectory(prefix="keel-bench-mlflow-gate-") as d,
        mlflow_server(Path(d) / "mlflow") as uri,
    ):
        drive = Driver(uri)
        runs = [
            drive("log_model", "fam", {"roc_auc": auc}, {"age": 1.0, "plan": "a"})["out"]
            for auc in (0.95, 0.7)
        ]
        drive.close()
        source = Tracking(uri).get("model-versions/get", {"name": "fam", "version": "1"})[
            "model_version"
        ]["source"]
        project = (
            f'[families]\n[mlflow]\ntracking_uri = "{uri}"\n'
            "[mlflow.gates.fam.promotion.prod]\nthresholds = { roc_auc = 0.9 }\n"
        )
        proc, port, _ = bridge(Path(d), project)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            t0 = time.perf_counter()
            for i in range(n):  # the same logged model under n version numbers
                data = {"name": "fam", "version": str(100 + i), "source": source}
                data["run_id"] = runs[0]["run_id"]
                doc = {"entity": "model_version", "action": "created", "data": data}
                deliver(conn, f"v-{i}", doc)
            versions_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            for i in range(n):  # alternately a version that passes and one that fails
                data = {"name": "fam", "alias": "prod", "version": str(i % 2 + 1)}
                deliver(
                    conn,
                    f"a-{i}",
                    {"entity": "model_version_alias", "action": "created", "data": data},
                )
            moves_s = time.perf_counter() - t0
            size = sum(
                f.stat().st_size
                for f in (Path(d) / "mlflow" / "artifacts").rglob("*")
                if f.is_file()
            )
        finally:
            proc.terminate()
            proc.wait(30)
    return {
        "versions": n,
        "versions_per_second": n / versions_s,
        "model_bytes": size // len(runs),
        "moves": n,
        "gated_moves_per_second": n / moves_s,
    }


def mlflow_guess(uri: str, name: str, at_ms: float) -> str | None:
    host, port = uri.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    flt = quote(f"name='{name}'")
    conn.request("GET", f"/api/2.0/mlflow/model-versions/search?filter={flt}&max_results=1000")
    versions = json.loads(conn.getresponse().read())["model_versions"]
    before = [v for v in versions if int(v["creation_timestamp"]) <= at_ms]
    best = max(before, key=lambda v: int(v["creation_timestamp"]), default=None)
    return str(best["version"]) if best else None


def correctness() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory(prefix="keel-bench-mlflow-") as d:
        proc, port, env = bridge(Path(d))
        try:
            with mlflow_server(Path(d) / "mlflow") as uri:
                drive = Driver(uri)
                drive("webhook", f"http://127.0.0.1:{port}/v1/mlflow/webhooks", SECRET)
                drive("model", "fam")
                truth: list[tuple[int, str]] = []
                made: set[str] = set()
                for v in MOVES:
                    time.sleep(1.2)
                    if v not in made:  # each version is registered just before its first move
                        drive("version", "fam", f"s3://models/fam/{v}")
                        made.add(v)
                    truth.append((drive("alias", "fam", "prod", v)["done_ms"], v))
                time.sleep(3)
                drive.close()
                rows = []
                ends = [t for t, _ in truth[1:]] + [truth[-1][0] + 5000]
                for (start, v), end in zip(truth, ends, strict=True):
                    at = (start + end) / 2
                    when = datetime.fromtimestamp(at / 1000, UTC).isoformat()
                    ask = ["audit", "serving", "--family", "fam", "--env", "prod", "--json"]
                    out = subprocess.run(
                        [KEEL, *ask, "--at", when],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    serving = json.loads(out.stdout)["serving"]
                    keel = next(
                        (w for w in MOVES if serving and model_id("fam", w) == serving["model_id"]),
                        None,
                    )
                    guess = mlflow_guess(uri, "fam", at)
                    rows.append(
                        {
                            "T": when[11:23],
                            "truth": v,
                            "keel": keel or "-",
                            "mlflow (newest created <= T)": guess or "-",
                            "keel right": keel == v,
                            "mlflow right": guess == v,
                        }
                    )
        finally:
            proc.terminate()
            proc.wait(30)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--deliveries", type=int, default=500)
    ap.add_argument("--gated", type=int, default=200, help="versions and gated moves (part 3)")
    args = ap.parse_args(argv)
    rate = throughput(args.deliveries)
    gate = gated(args.gated)
    rows = correctness()
    extra = {
        "throughput": rate,
        "gate_and_files": gate,
        "keel_right": sum(r["keel right"] for r in rows),
        "mlflow_right": sum(r["mlflow right"] for r in rows),
        "probes": len(rows),
    }
    report("mlflow_bridge", "prod at T: truth vs Keel vs MLflow", rows, extra)
    print(
        f"bridge: {rate['per_second']:.1f} deliveries/s ({rate['deliveries']} in "
        f"{rate['seconds']:.1f} s); right at {len(rows)} times: keel {extra['keel_right']}, "
        f"mlflow {extra['mlflow_right']}"
    )
    print(
        f"versions with files ({gate['model_bytes']} B each): "
        f"{gate['versions_per_second']:.1f}/s; gated alias moves: "
        f"{gate['gated_moves_per_second']:.1f}/s"
    )


if __name__ == "__main__":
    main()
