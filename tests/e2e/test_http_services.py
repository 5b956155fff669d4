"""`keel service run ingest|audit` as real processes on loopback, driven over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from keel_services.entrypoints.demo.story import monthly_batches

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "exited"
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    pytest.fail(f"{url} did not come up")


def test_ingest_and_audit_services_over_http(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    demo = json.loads(
        subprocess.run(
            [KEEL, "demo", "--json", "--workdir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
        ).stdout
    )
    env.update(
        KEEL_HOME=demo["home"],
        KEEL_PROJECT=demo["project"],
        KEEL_KEYS_DIR=demo["keys_dir"],
        KEEL_API_TOKEN="t0k",
    )
    procs = []
    try:
        urls = {}
        for name in ("ingest", "audit"):
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [KEEL, "service", "run", name, "--port", str(port)],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            urls[name] = f"http://127.0.0.1:{port}"
            wait_up(urls[name], procs[-1])
        auth = {"Authorization": "Bearer t0k"}
        r = httpx.post(
            f"{urls['ingest']}/v1/families/breast_cancer/records",
            json=monthly_batches()[1][5][:10],
            headers=auth,
            params={"at": "2026-01-05"},
            timeout=60,
        )
        assert r.status_code == 200 and r.json()["accepted"] == 10, r.text
        assert (
            httpx.get(f"{urls['audit']}/v1/serving/breast_cancer/prod", timeout=30).status_code
            == 401
        )
        served = httpx.get(
            f"{urls['audit']}/v1/serving/breast_cancer/prod",
            params={"at": "2025-07-01"},
            headers=auth,
            timeout=60,
        ).json()
        assert (
            served["serving"]["model_id"]
            == demo["answers"]["serving_prod_at"]["serving"]["model_id"]
        )
        page = httpx.get(
            f"{urls['audit']}/v1/registry/breast_cancer",
            params={"limit": 3, "offset": 2},
            headers=auth,
            timeout=60,
        ).json()
        assert [d["event_id"] for d in page["decisions"]] and len(page["decisions"]) == 3
        assert (
            httpx.get(
                f"{urls['audit']}/v1/serving/breast_cancer/prod",
                params={"at": "yesterday"},
                headers=auth,
                timeout=30,
            ).status_code
            == 422
        )
        assert httpx.get(f"{urls['audit']}/docs", timeout=30).status_code == 200
        # the review pack, as `keel audit report`, signed by the audit service's identity
        year = {"from": "2025-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z", "env": "prod"}
        pack = httpx.get(
            f"{urls['audit']}/v1/report/breast_cancer",
            params={**year, "format": "json"},
            headers=auth,
            timeout=300,
        )
        assert pack.status_code == 200 and pack.json()["ok"], pack.text
        assert pack.json()["signed_by"] == "audit"
        assert len(pack.json()["report"]["timeline"]["prod"]) == 4
        page = httpx.get(
            f"{urls['audit']}/v1/report/breast_cancer", params=year, headers=auth, timeout=300
        )
        assert page.headers["content-type"].startswith("text/html")
        assert "Review pack: breast_cancer" in page.text
        bad = httpx.get(
            f"{urls['audit']}/v1/report/breast_cancer",
            params={**year, "to": "2024-01-01"},
            headers=auth,
            timeout=60,
        )
        assert bad.status_code == 422 and "before it starts" in bad.text
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=30)
