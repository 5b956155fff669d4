"""Issue 37, the disaster drill: lose Redis and the audit API's replica, rebuild everything from
Kafka and the object store, verify against the last witnessed checkpoint; nothing is lost and
every answer is as before.

The story is `keel demo` on Kafka + Redis with its artifacts in an S3 object store (SeaweedFS).
Before the disaster: `keel audit project` folds and checkpoints, `keel audit checkpoint --to`
hands the checkpoint to a witness outside the home (the home's default local witness holds it
too), `keel audit snapshot` writes the API's start-up snapshot, and the answers are recorded
through the CLI (serving and why at several times, registry history, why-promoted, diff,
lineage of the prod model, the artifact list, `keel audit verify`) and through the audit API's
replica (`keel service run audit`, read once it answers from its replica).
The disaster: the Redis server is stopped and its data directory deleted (a new empty server
on the same port), and the API's replica file and snapshot directory are deleted.
The recovery, as an operator would run it: `keel audit rebuild`, `keel audit verify
--checkpoint <witness>`, the API started again. Every recorded answer must be equal.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.processes import free_port
from deploy.redis_server import Redis
from tests.demo_home import KEEL
from tests.infra import stack_secrets

pytestmark = pytest.mark.faults
FAMILY = "breast_cancer"
TOKEN = "drill-read-t0k"


class Home:
    """A demo home on Kafka + Redis + S3, and the `keel` commands an operator runs on it."""

    def __init__(self, env: dict[str, str], demo: dict[str, Any]) -> None:
        self.env, self.demo = env, demo

    def keel(self, *args: str, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
        out = subprocess.run([KEEL, *args], env=self.env, capture_output=True, text=True)
        assert out.returncode in ok, f"keel {' '.join(args)}: {out.returncode}\n{out.stderr}"
        return out

    def json(self, *args: str, ok: tuple[int, ...] = (0,)) -> Any:
        return json.loads(self.keel(*args, "--json", ok=ok).stdout)

    @property
    def home(self) -> Path:
        return Path(self.env["KEEL_HOME"])


def start_redis(root: Path, port: int) -> Redis:
    # the session's servers' secrets (one CA, one file per principal): keel finds them by port
    return Redis(root, port, secrets_dir=stack_secrets(root.parent)).start()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    """A Redis of the drill's own: the disaster stops it and deletes its data."""
    root = tmp_path_factory.mktemp("drill-redis") / "redis"
    server = start_redis(root, free_port())
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def home(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    redis_server: Redis,
    s3_env: dict[str, str],
) -> Home:
    from keel.log.kafka import new_prefix

    work = tmp_path_factory.mktemp("drill")
    prefix = new_prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "AWS_"))}
    env.update(
        # the endpoint only: each process signs in with its own principal's keys
        {k: v for k, v in s3_env.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET"))},
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        KEEL_VIEWS=f"{redis_server.url}?namespace={prefix.rstrip('.')}:",
        KEEL_ARTIFACTS=f"s3://keel-test/{prefix.rstrip('.')}",  # a write-once bucket
        KEEL_API_TOKEN=TOKEN,
    )
    backends = ["--bus", env["KEEL_BUS"], "--views", env["KEEL_VIEWS"]]
    out = subprocess.run(
        # (the demo takes its backends from its options; its artifact store from the settings)
        [KEEL, "demo", "--json", "--workdir", str(work / "demo"), *backends],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    demo = json.loads(out.stdout)
    env.update(
        KEEL_HOME=demo["home"],
        KEEL_PROJECT=demo["project"],
        KEEL_KEYS_DIR=demo["keys_dir"],
        KEEL_ADMIN_DIR=demo["admin_dir"],
    )
    return Home(env, demo)


# -- the answers ---------------------------------------------------------------------------------


def times(demo: dict[str, Any]) -> list[str]:
    """The instant each deployment of the story starts (ties by recorded order) and a moment
    inside its interval, one before the first and one after the last."""
    out = ["2025-01-01T00:00:00+00:00"]
    for at in sorted({d["at"] for d in demo["deployments"]}):
        out += [at, (datetime.fromisoformat(at) + timedelta(hours=6)).isoformat()]
    return [*out, "2030-01-01T00:00:00+00:00"]


def cli_answers(h: Home) -> dict[str, Any]:
    """What the CLI answers (from the Redis views)."""
    demo = h.demo
    prod = [d["model_id"] for d in demo["deployments"] if d["env"] == "prod"]
    staging = [d["model_id"] for d in demo["deployments"] if d["env"] == "staging"]
    out: dict[str, Any] = {}
    moments = times(demo)
    for at in moments:
        for env in ("prod", "staging"):
            out[f"serving {env} {at}"] = h.json("audit", "serving", "--env", env, "--at", at)
    for at in moments[1::4]:  # (the API answers why at every moment)
        out[f"why prod {at}"] = h.json("audit", "why", "--env", "prod", "--at", at, ok=(0, 1))
    out["history"] = h.json("audit", "history", "--limit", "1000")
    out["why-promoted"] = h.json("audit", "why-promoted", prod[-1], ok=(0, 1))
    out["diff"] = h.json("audit", "diff", prod[-1], staging[-1], ok=(0, 1))
    for model in {prod[-1], prod[0], staging[-1]}:
        out[f"lineage {model}"] = h.json(
            "artifacts", "lineage", model, "--depth", "100", "--limit", "1000"
        )
    out["artifacts"] = h.json("artifacts", "list", "--limit", "1000")
    out["families"] = h.keel("families").stdout
    return out


def api_answers(url: str, demo: dict[str, Any]) -> dict[str, Any]:
    """What the audit API answers from its replica (freshness apart: it says when it looked)."""
    paths: list[tuple[str, dict[str, str]]] = [
        (f"/v1/registry/{FAMILY}", {"limit": "1000"}),
        ("/v1/families", {}),
        (f"/v1/families/{FAMILY}/models", {}),
        (f"/v1/families/{FAMILY}/datasets", {}),
        (f"/v1/families/{FAMILY}/deployments/prod", {}),
        (f"/v1/families/{FAMILY}/deployments/staging", {}),
        ("/v1/artifacts", {"limit": "1000"}),
    ]
    for at in times(demo):
        paths += [(f"/v1/serving/{FAMILY}/{env}", {"at": at}) for env in ("prod", "staging")]
        paths += [(f"/v1/why/{FAMILY}/prod", {"at": at})]
    out = {}
    for path, params in paths:
        r = httpx.get(url + path, params=params, headers={"Authorization": f"Bearer {TOKEN}"})
        doc = r.json()
        assert doc.pop("freshness", {}).get("source") == "replica", (path, params, doc)
        out[f"{path} {params}"] = (r.status_code, doc)
    return out


def on_replica(url: str, proc: subprocess.Popen[str]) -> None:
    """Wait until the API answers from its own replica, at the log's end."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else "the API exited"
        try:
            r = httpx.get(
                url + "/v1/families", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
            )
            fresh = r.json().get("freshness", {}) if r.status_code == 200 else {}
            if fresh.get("source") == "replica" and fresh.get("lag") == 0:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} never answered from its replica")


def with_api(h: Home) -> dict[str, Any]:
    port = free_port()
    proc = subprocess.Popen(
        [KEEL, "service", "run", "audit", "--port", str(port)],
        env=h.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        on_replica(url, proc)
        return api_answers(url, h.demo)
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def changed(before: dict[str, Any], after: dict[str, Any]) -> str:
    """The answers that differ, each before and after ('' when none)."""
    keys = sorted(k for k in before if after.get(k) != before[k])
    return "\n".join(f"{k}:\n  before {before[k]}\n  after  {after.get(k)}" for k in keys)


def verdict(report: dict[str, Any]) -> dict[str, Any]:
    """What a verify report says of the trail (not how long it took, nor how many checkpoints
    the log holds: a rebuild signs one more over the same trees)."""
    keep = ("ok", "problems", "events", "signed", "unsigned", "rejected", "artifacts")
    return {k: report[k] for k in keep if k in report}


# -- the drill -----------------------------------------------------------------------------------


def test_nothing_is_lost_when_redis_and_the_api_replica_are(
    home: Home, redis_server: Redis, tmp_path: Path
) -> None:
    h = home
    h.keel("audit", "project")
    witness = tmp_path / "witness"
    h.keel("audit", "checkpoint", "--to", f"{witness}/")
    assert list(witness.iterdir()), "the witness holds no checkpoint"
    snapshot = Path(h.json("audit", "snapshot")["snapshot"])
    verified = h.json("audit", "verify", "--checkpoint", str(witness))
    assert verified["ok"], verified["problems"]
    before_cli = cli_answers(h)
    before_api = with_api(h)  # its replica starts from the snapshot
    replicas = h.home / "replicas"
    assert any(replicas.glob("*.db")), "the API kept no replica"

    # the disaster: Redis's data and the API's replica and snapshots are gone
    redis_server.stop()
    shutil.rmtree(redis_server.root)
    start_redis(redis_server.root, redis_server.port)
    shutil.rmtree(replicas)
    shutil.rmtree(snapshot.parent)
    assert redis_server.client().dbsize() == 0 and not replicas.exists()

    # the recovery
    h.keel("audit", "rebuild")
    after = h.json("audit", "verify", "--checkpoint", str(witness), ok=(0, 1))
    assert after["ok"], f"the rebuilt trail does not verify: {after['problems']}"
    assert verdict(after) == verdict(verified)
    trees = after["trees"]
    assert trees["checked"] > 0 and not trees["uncovered"], trees  # the witness's notes too
    after_cli = cli_answers(h)
    differ = changed(before_cli, after_cli)
    assert not differ, f"CLI answers changed by the disaster and rebuild:\n{differ}"
    after_api = with_api(h)  # its replica folded from Kafka again
    differ = changed(before_api, after_api)
    assert not differ, f"audit API answers changed by the disaster and rebuild:\n{differ}"
    # and the answers were answers: the story's last prod model serves prod at its end
    last = [d["model_id"] for d in h.demo["deployments"] if d["env"] == "prod"][-1]
    assert before_cli["serving prod 2030-01-01T00:00:00+00:00"]["serving"]["model_id"] == last
