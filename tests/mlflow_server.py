"""A real `mlflow server` (pinned 3.x, SQLite backend) in its own venv, for tests and benches.

The venv lives in .bench-venvs/mlflow and is made once (a lock file keeps two processes from
building it together; a marker names the pinned version, so a changed pin rebuilds it); pip's
cache makes a rebuild on CI quick. MLflow's pins never touch Keel's own environment."""

from __future__ import annotations

import fcntl
import http.client
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from deploy.processes import free_port as deploy_free_port

ROOT = Path(__file__).resolve().parents[1]
MLFLOW = "mlflow==3.17.2"  # the version issue 38 checked; also the `mlflow` extra
VENV = ROOT / ".bench-venvs" / "mlflow"


def free_port() -> int:
    return deploy_free_port()  # in this test worker's own port range (tests/conftest.py)


def mlflow_python() -> Path:
    """The venv's interpreter, with MLflow installed (built on first use, then reused)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    marker = VENV / "keel-pinned.txt"
    with open(VENV.parent / "mlflow.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if marker.exists() and marker.read_text() == MLFLOW:
            return VENV / "bin" / "python"
        if VENV.exists() and not (VENV / "bin" / "mlflow").exists():
            shutil.rmtree(VENV)  # a half-built venv from an interrupted run
        if not (VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip = [str(VENV / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, MLFLOW], check=True)
        marker.write_text(MLFLOW)
    return VENV / "bin" / "python"


def wait_http(port: int, path: str, proc: subprocess.Popen[bytes], seconds: float = 300) -> None:
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
def process(
    cmd: list[str], env: dict[str, str], port: int, probe: str, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(port, probe, proc)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


@contextmanager
def mlflow_server(workdir: Path, retries: int = 3, proxied: bool = False) -> Iterator[str]:
    """`mlflow server` on 127.0.0.1 with a SQLite backend in `workdir`; yields its URL.
    Webhooks may call private http addresses (the bridge on localhost); `retries` is MLflow's
    MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES (backoff 1 s doubling, capped at 60 s). `proxied`: the
    server keeps artifacts itself (`mlflow-artifacts:/` URIs, files only over its HTTP API)
    instead of giving clients a local artifact root."""
    python = mlflow_python()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        str(python.with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir}/mlflow.db",
        *(
            ["--artifacts-destination", f"{workdir}/proxied"]
            if proxied
            else ["--default-artifact-root", f"{workdir}/artifacts"]
        ),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {
        **os.environ,
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES": str(retries),
        "MLFLOW_WEBHOOK_CACHE_TTL": "0",  # a webhook created now is used now
    }
    with process(cmd, env, port, "/health", workdir / "mlflow.log"):
        yield f"http://127.0.0.1:{port}"
