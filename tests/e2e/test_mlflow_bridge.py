"""Keel beside MLflow (issue 38), against a real `mlflow server` (3.17.2, SQLite backend):
a registry driver registers versions and moves the `prod` alias back and forth (rollbacks
included) with the bridge subscribed; the bridge is killed -9 mid-stream and restarted, and
catches up from MLflow's retries; `keel audit serving --at T` must equal the driver's own record
for every T, nothing lost or doubled; why, history, verify work on the MLflow family; bad
deliveries are refused, ignored or quarantined and counted; `keel mlflow import` records a
registry the webhook never saw, marked as history unknown before the import."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import tarfile
import time
import urllib.parse
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

    def __call__(self, *cmd: Any) -> dict[str, Any]:
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


# -- issue 38, items 3 and 2: the gate on alias moves, and model bytes in Keel's store ----------
CONTRACT = {
    "type": "record",
    "name": "churn_inference",
    "namespace": "keel.contracts",
    "fields": [{"name": "age", "type": "double"}, {"name": "plan", "type": "string"}],
}


def gated_project(env: dict[str, str], uri: str, name: str) -> None:
    """The demo's keel.toml plus a gate on the MLflow family `name` in prod."""
    project = Path(env["KEEL_PROJECT"])
    project = project / "keel.toml" if project.is_dir() else project
    (project.parent / "churn_inference.avsc").write_text(json.dumps(CONTRACT))
    with project.open("a") as f:
        f.write(
            f'\n[mlflow]\ntracking_uri = "{uri}"\n'
            f'[mlflow.gates."{name}"]\ncontract = "churn_inference.avsc"\n'
            f'[mlflow.gates."{name}".promotion.prod]\nthresholds = {{ roc_auc = 0.9 }}\n'
        )


def wait_deployments(env: dict[str, str], name: str, n: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 120
    while True:
        seen = keel(env, "deployments", "list", "--family", name, "--env", "prod")["deployments"]
        if len(seen) >= n or time.monotonic() > deadline:
            assert len(seen) == n, seen
            return seen
        time.sleep(0.5)


def serving_now(env: dict[str, str], name: str) -> dict[str, Any]:
    doc: dict[str, Any] = keel(env, "audit", "serving", "--family", name, "--env", "prod")
    return doc


def test_mlflow_gate_and_model_bytes(tmp_path: Path, mlflow: str) -> None:
    _, env = demo_home(tmp_path / "demo")
    gate_scenario(env, mlflow, tmp_path, "churn-gated")


@pytest.mark.integration
def test_mlflow_gate_and_model_bytes_kafka_redis(
    tmp_path: Path, mlflow: str, kafka_bootstrap: str, redis_url: str
) -> None:
    prefix = f"mlg{os.getpid()}."
    views = redis_url.rsplit("/", 1)[0] + "/6?namespace=" + prefix.replace(".", ":")
    _, env = demo_home(tmp_path / "k", f"kafka://{kafka_bootstrap}?prefix={prefix}", views)
    gate_scenario(env, mlflow, tmp_path, "churn-gated-k")


def gate_scenario(env: dict[str, str], mlflow: str, tmp_path: Path, name: str) -> None:
    """A version whose run's roc_auc (0.71) misses the prod policy (>= 0.9) is moved to prod:
    serving, why, history, the console and the review pack show it served with "failed policy:
    ...". A good one passes; one whose logged signature needs a column the contract does not
    send fails on the contract. The logged models' files are in Keel's store (a tar `keel
    artifacts get` writes, verify checks); an s3:// source is recorded with the reason it was
    not read."""
    gated_project(env, mlflow, name)
    drive = Driver(mlflow)
    port = free_port()
    bridge = start_bridge(env, port, tmp_path / "bridge.log")
    hook = None
    try:
        hook = drive("webhook", f"http://127.0.0.1:{port}/v1/mlflow/webhooks", SECRET)["out"]
        row = {"age": 41.5, "plan": "gold"}
        weak = drive("log_model", name, {"roc_auc": 0.71}, row)["out"]
        good = drive("log_model", name, {"roc_auc": 0.95}, row)["out"]
        odd = drive("log_model", name, {"roc_auc": 0.97}, {**row, "zip": "75001"})["out"]
        remote = drive("version", name, f"s3://models/{name}/remote")["out"]

        drive("alias", name, "prod", weak["version"])
        wait_deployments(env, name, 1)
        doc = serving_now(env, name)
        assert doc["serving"]["model_id"] == model_id(name, weak["version"])
        reason = doc["serving"]["reason"]
        assert "failed policy: roc_auc 0.7100 misses >= 0.9 by 0.1900" in reason, reason
        assert "signature matches churn_inference" in reason, reason
        text = subprocess.run(
            [KEEL, "audit", "serving", "--family", name, "--env", "prod"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert "failed policy" in text.stdout, text.stdout + text.stderr
        why = keel(env, "audit", "why", "--family", name, "--env", "prod")
        assert "failed policy: roc_auc" in why["steps"][0]["reason"]
        history = keel(env, "audit", "history", "--family", name)
        rejected = [r for r in history["decisions"] if r["decision"] == "rejected"]
        assert [r["trigger"] for r in rejected] == ["mlflow-alias"], history

        drive("alias", name, "prod", good["version"])
        wait_deployments(env, name, 2)
        reason = serving_now(env, name)["serving"]["reason"]
        assert "passed policy: roc_auc 0.9500 >= 0.9" in reason, reason

        drive("alias", name, "prod", odd["version"])
        wait_deployments(env, name, 3)
        reason = serving_now(env, name)["serving"]["reason"]
        assert reason.count("failed policy:") == 1 and "zip: the model requires it" in reason
        assert "roc_auc 0.9700 >= 0.9" in reason, reason

        drive("alias", name, "prod", remote)
        wait_deployments(env, name, 4)
        reason = serving_now(env, name)["serving"]["reason"]
        assert "failed policy" in reason and "roc_auc was not measured" in reason, reason
        assert "signature not checked" in reason and "s3://" in reason, reason
    finally:
        if hook is not None:
            drive("delete_webhook", hook)
        bridge.terminate()
        bridge.wait(30)
        drive.close()

    # the logged model's files, content-addressed: the tar Keel stored is MLflow's files
    out = tmp_path / "weak.tar"
    got = keel(env, "artifacts", "get", model_id(name, weak["version"]), "--out", str(out))
    with tarfile.open(out) as tar:
        names = tar.getnames()
        mlmodel = tar.extractfile("MLmodel")
        assert mlmodel is not None and b"signature" in mlmodel.read()
    assert "python_model.pkl" in names, names
    assert got["digest"] == hashlib.sha256(out.read_bytes()).hexdigest()
    # the unreadable source: the model artifact is the version's document, saying why
    cat = subprocess.run(
        [KEEL, "artifacts", "cat", model_id(name, remote)],
        env=env,
        capture_output=True,
        text=True,
    )
    record = json.loads(cat.stdout.splitlines()[0])
    assert record["model_bytes"]["stored"] is False and "s3://" in record["model_bytes"]["why"]

    # the review pack lists the failed move with its reason (on Kafka, the events are first
    # folded and checkpointed by a reader holding the audit key, as the projector service does)
    assert subprocess.run([KEEL, "audit", "project"], env=env, capture_output=True).returncode == 0
    pack = tmp_path / "pack.html"
    made = subprocess.run(
        [KEEL, "audit", "report", "--family", name, "--from", "2020-01-01", "--to", "2100-01-01",
         "--out", str(pack)],
        env=env,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stdout + made.stderr
    assert "failed policy: roc_auc 0.7100" in pack.read_text()
    report = subprocess.run([KEEL, "audit", "verify"], env=env, capture_output=True, text=True)
    assert report.returncode == 0, report.stdout + report.stderr

    # the console: the family's timeline has its prod lane and marks the rejected moves; the
    # why page of the first move says it failed
    port = free_port()
    audit = subprocess.Popen(
        [KEEL, "service", "run", "audit", "--port", str(port)],
        env={**env, "KEEL_API_TOKEN": "console-t0k"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(port, "/healthz", audit, 120)
        console = f"http://127.0.0.1:{port}/console"
        page = fetch_page(f"{console}/timeline/{name}", "console-t0k")
        assert 'data-env="prod"' in page and page.count('data-decision="rejected"') == 3, page
        first = datetime.fromisoformat(
            keel(env, "deployments", "list", "--family", name, "--env", "prod")["deployments"][-1][
                "since"
            ]
        )
        at = urllib.parse.quote(first.isoformat())
        page = fetch_page(f"{console}/why/{name}/prod?at={at}", "console-t0k")
        assert "failed policy: roc_auc 0.7100" in page, page
    finally:
        audit.terminate()
        audit.wait(30)


def fetch_page(url: str, token: str) -> str:
    req = urllib.request.Request(url, headers={"Cookie": f"keel_console={token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return str(r.read().decode())


def test_model_files_through_the_artifact_proxy(tmp_path: Path) -> None:
    """A server that keeps artifacts itself (`mlflow-artifacts:/`, files only over its HTTP
    API): a version's `models:/m-...` source resolves to the logged model's proxied location
    and every file is read through the server, byte for byte what it stored."""
    from keel_services.mlflow_bridge import model_files
    from keel_services.mlflow_bridge.tracking import Tracking

    work = tmp_path / "mlflow"
    with mlflow_server(work, proxied=True) as uri:
        drive = Driver(uri)
        try:
            logged = drive("log_model", "proxied", {"roc_auc": 0.8}, {"age": 1.0})["out"]
        finally:
            drive.close()
        tracking = Tracking(uri)
        source = tracking.get("model-versions/get", {"name": "proxied", "version": "1"})[
            "model_version"
        ]["source"]
        assert source.startswith("models:/m-")
        got = model_files.fetch(source, tracking, tmp_path)
        assert tracking.run_metrics(logged["run_id"]) == {"roc_auc": 0.8}
    try:
        assert got.location.startswith("mlflow-artifacts:"), got.location
        stored = next(work.glob("proxied/*/models/m-*/artifacts"))
        truth = {
            p.relative_to(stored).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in stored.rglob("*")
            if p.is_file()
        }
        assert {f["path"]: f["sha256"] for f in got.files} == truth
        assert "MLmodel" in truth and got.mlmodel == (stored / "MLmodel").read_bytes()
    finally:
        got.tar.unlink()
