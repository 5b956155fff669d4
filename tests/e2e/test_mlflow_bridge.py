"""Keel beside MLflow (issue 38), against a real `mlflow server` (3.17.2, SQLite backend):
a registry driver registers versions and moves the `prod` alias back and forth (rollbacks
included) with the bridge subscribed; the bridge is killed -9 mid-stream and restarted, and
catches up from MLflow's retries; `keel audit serving --at T` must equal the driver's own record
for every T, nothing lost or doubled; why, history, verify work on the MLflow family; bad
deliveries are refused, ignored or quarantined and counted; `keel mlflow import` records a
registry the webhook never saw, marked as history unknown before the import."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from keel_services.mlflow_bridge import domain
from keel_services.mlflow_bridge.handlers import model_id
from tests.demo_home import KEEL, demo_home
from tests.mlflow_server import free_port, mlflow_python, mlflow_server, wait_http

pytestmark = pytest.mark.e2e
DRIVER = Path(__file__).resolve().parents[1] / "mlflow_registry_driver.py"
SECRET = "s3cret-for-tests"
GAP = 3.0  # seconds between registry changes: MLflow delivers each from a thread pool
# Keel's business time is the delivery's own timestamp, which MLflow stamps when its thread pool
# sends it: moments after the change, later on a loaded machine. Probes sit late in each
# interval, so a delivery may lag its change by up to LATE x GAP and still be judged right.
LATE = 0.85


class Driver:
    def __init__(self, uri: str) -> None:
        self.proc = subprocess.Popen(
            [str(mlflow_python()), str(DRIVER), uri],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def __call__(self, *cmd: str) -> dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the driver stopped on {cmd}"
        out: dict[str, Any] = json.loads(line)
        return out

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        self.proc.wait(30)


def start_bridge(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [KEEL, "service", "run", "mlflow-bridge", "--port", str(port)]
    proc = subprocess.Popen(
        cmd,
        env={**env, "KEEL_MLFLOW_WEBHOOK_SECRET": SECRET},
        stdout=open(log, "ab"),  # noqa: SIM115 (the process owns it)
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(port, "/healthz", proc, 120)
    except RuntimeError as exc:
        raise AssertionError(log.read_text(errors="replace")[-3000:]) from exc
    return proc


def stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/mlflow/stats", timeout=10) as r:
        out: dict[str, int] = json.loads(r.read())
        return out


def keel(env: dict[str, str], *args: str) -> Any:
    out = subprocess.run([KEEL, *args, "--json"], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def post(port: int, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/mlflow/webhooks",
        data=body,
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def signed(body: bytes, delivery: str, stamp: int, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-MLflow-Delivery-Id": delivery,
        "X-MLflow-Timestamp": str(stamp),
        "X-MLflow-Signature": domain.expected_signature(secret, delivery, str(stamp), body),
    }


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # enough retries (1 s doubling, capped at 60 s) to outlast a bridge restart
    with mlflow_server(tmp_path_factory.mktemp("mlflow"), retries=8) as uri:
        yield uri


def scenario(env: dict[str, str], uri: str, tmp: Path, name: str) -> None:
    drive = Driver(uri)
    port = free_port()
    log = tmp / "bridge.log"
    # A registry the webhook never saw: imported once, marked as history unknown before it.
    legacy = f"{name}-legacy"
    drive("model", legacy)
    for i in (1, 2):
        drive("version", legacy, f"s3://models/{legacy}/{i}")
    drive("alias", legacy, "prod", "2")
    bridge = start_bridge(env, port, log)
    hook = None
    try:
        # one server serves both tests: a webhook left behind would keep MLflow's delivery
        # threads busy retrying a dead bridge and delay this one's deliveries
        hook = drive("webhook", f"http://127.0.0.1:{port}/v1/mlflow/webhooks", SECRET)["out"]
        truth: list[tuple[float, str | None]] = []  # (done_ms, version serving prod from then)
        drive("model", name)
        for i in (1, 2, 3):
            drive("version", name, f"s3://models/{name}/{i}")
            time.sleep(0.2)
        drive("tag", name, "2", "validated_by", "alice")
        for version in ("1", "2"):
            time.sleep(GAP)
            truth.append((drive("alias", name, "prod", version)["done_ms"], version))
        # killed mid-stream: the next moves fail to deliver; MLflow retries them
        bridge.send_signal(signal.SIGKILL)
        bridge.wait()
        for version in ("3", "1"):  # 1: a rollback
            time.sleep(GAP)
            truth.append((drive("alias", name, "prod", version)["done_ms"], version))
        bridge = start_bridge(env, port, log)
        for version in ("3",):
            time.sleep(GAP)
            truth.append((drive("alias", name, "prod", version)["done_ms"], version))
        time.sleep(GAP)
        truth.append((drive("delete_alias", name, "prod")["done_ms"], None))
        time.sleep(GAP)
        truth.append((drive("alias", name, "prod", "2")["done_ms"], "2"))
        # every delivery arrives (retries included) before the answers are read
        deadline = time.monotonic() + 180
        moves = len(truth)
        while time.monotonic() < deadline:
            seen = keel(env, "deployments", "list", "--family", name, "--env", "prod")
            if len(seen["deployments"]) >= moves:
                break
            time.sleep(1)
        deployments = keel(env, "deployments", "list", "--family", name, "--env", "prod")[
            "deployments"
        ]
        assert len(deployments) == moves, deployments  # nothing lost, nothing doubled
        assert {d["kind"] for d in deployments} == {"alias", "withdrawn"}

        # bad input, on the running bridge
        body = json.dumps(
            {
                "entity": "model_version_alias",
                "action": "created",
                "timestamp": datetime.now(UTC).isoformat(),
                "data": {"name": name, "alias": "staging", "version": "1"},
            }
        ).encode()
        now = int(time.time())
        before = stats(port)
        assert post(port, body, {})[0] == 401
        assert post(port, body, signed(body, "d-1", now, "wrong"))[0] == 401
        assert post(port, body, signed(body, "d-1", now)) == (
            200,
            {
                "status": "recorded",
                "delivery_id": "d-1",
                "events": ["ArtifactRecorded", "ModelDeployed"],
            },
        )
        assert post(port, body, signed(body, "d-1", now))[1]["status"] == "duplicate"
        assert post(port, body, signed(body, "d-2", now - 3600))[0] == 400
        odd = json.dumps({"entity": "experiment", "action": "created", "data": {}}).encode()
        assert post(port, odd, signed(odd, "d-3", now))[1]["status"] == "quarantined"
        assert post(port, b"{not json", signed(b"{not json", "d-4", now))[1]["status"] == (
            "quarantined"
        )
        after = stats(port)
        delta = {k: after[k] - before[k] for k in after}
        # MLflow may still retry a delivery the bridge answered late (already recorded): such
        # a retry is one more duplicate, never another record
        assert delta.pop("duplicate") >= 1
        assert delta == {"recorded": 1, "quarantined": 2, "unauthorized": 2, "stale": 1}
        text = log.read_text(errors="replace")
        assert SECRET not in text and "Traceback" not in text  # no delivery answered 500
    finally:
        if hook is not None:
            drive("delete_webhook", hook)
        bridge.terminate()
        bridge.wait(30)
        drive.close()

    # Keel's answer equals the driver's record at every T between changes (and before any)
    marks = [t for t, _ in truth]
    probes = [(marks[0] - 500, None)]
    probes += [(a + LATE * (b - a), v) for (a, v), (b, _) in pairwise(truth)]
    probes += [(marks[-1] + LATE * GAP * 1000, truth[-1][1])]
    for at, version in probes:
        doc = keel(env, "audit", "serving", "--family", name, "--env", "prod", "--at", iso(at))
        got = doc["serving"]["model_id"] if doc["serving"] else None
        want = model_id(name, version) if version else None
        assert got == want, (iso(at), version, doc)
    after_delete = truth[-2][0] + LATE * (truth[-1][0] - truth[-2][0])  # delete, then last move
    doc = keel(
        env, "audit", "serving", "--family", name, "--env", "prod", "--at", iso(after_delete)
    )
    assert "withdrawn" in doc["message"] and "deleted" in doc["message"]
    why = keel(env, "audit", "why", "--family", name, "--env", "prod", "--at", iso(probes[-1][0]))
    assert why["steps"][0]["kind"] == "alias" and "version 2" in why["steps"][0]["reason"]

    # the import: current aliases as deployments, history before it unknown; again: no change
    failed = subprocess.run(
        [KEEL, "mlflow", "import", "--tracking-uri", "http://127.0.0.1:9", "--model", legacy],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failed.returncode != 0 and "nothing was recorded" in failed.stderr + failed.stdout
    first = keel(env, "mlflow", "import", "--tracking-uri", uri, "--model", legacy)
    assert (first["versions"], first["aliases"], first["aliases_already_known"]) == (2, 1, 0)
    again = keel(env, "mlflow", "import", "--tracking-uri", uri, "--model", legacy)
    assert (again["aliases_already_known"], again["events"]) == (1, 0)
    now_doc = keel(env, "audit", "serving", "--family", legacy, "--env", "prod")
    assert now_doc["serving"]["model_id"] == model_id(legacy, "2")
    assert "history before" in now_doc["serving"]["reason"]
    earlier = iso(datetime.fromisoformat(first["imported_at"]).timestamp() * 1000 - 60_000)
    assert (
        keel(env, "audit", "serving", "--family", legacy, "--env", "prod", "--at", earlier)[
            "serving"
        ]
        is None
    )
    report = subprocess.run([KEEL, "audit", "verify"], env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stdout + report.stderr


def test_mlflow_bridge_embedded(tmp_path: Path, mlflow: str) -> None:
    _, env = demo_home(tmp_path / "demo")
    scenario(env, mlflow, tmp_path, "churn")


@pytest.mark.integration
def test_mlflow_bridge_kafka_redis(
    tmp_path: Path, mlflow: str, kafka_bootstrap: str, redis_url: str
) -> None:
    prefix = f"mlf{os.getpid()}."
    views = redis_url.rsplit("/", 1)[0] + "/6?namespace=" + prefix.replace(".", ":")
    _, env = demo_home(tmp_path / "k", f"kafka://{kafka_bootstrap}?prefix={prefix}", views)
    scenario(env, mlflow, tmp_path, "churn-k")
