"""`keel demo` end to end, through the installed command, twice in fresh homes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

KEEL = str(Path(sys.executable).with_name("keel"))


def run_demo(workdir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    doc: dict[str, Any] = json.loads(out.stdout)
    return doc


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_demo(tmp_path_factory.mktemp("demo-a"))


def test_story_has_every_required_beat(demo: dict[str, Any]) -> None:
    assert demo["quarantined"] >= 1
    decisions = {(p["env"], p["decision"]) for p in demo["promotions"]}
    assert ("prod", "rejected") in decisions
    prod = [d for d in demo["deployments"] if d["env"] == "prod"]
    assert len(prod) >= 2
    kinds = demo["artifacts_by_kind"]
    for kind in (
        "raw_batch",
        "dataset",
        "quarantine_batch",
        "feature_set",
        "feature_stats",
        "model",
        "eval_report",
        "deployment_manifest",
    ):
        assert kinds.get(kind, 0) >= 1, kind
    retrains = [p for p in demo["promotions"] if p["env"] == "staging"]
    assert len(retrains) >= 3


def test_answers_agree_with_the_deployment_history(demo: dict[str, Any]) -> None:
    a = demo["answers"]
    at = a["serving_prod_at"]["at"]
    prod = sorted((d for d in demo["deployments"] if d["env"] == "prod"), key=lambda d: d["at"])
    expected = [d for d in prod if d["at"] <= at][-1]["model_id"]
    assert a["serving_prod_at"]["serving"]["model_id"] == expected
    why = a["why_current_prod"]
    assert why["promotion"]["model_id"] == prod[-1]["model_id"]
    assert why["over"] == prod[-2]["model_id"]
    assert all(g["passed"] for g in why["promotion"]["gates"])
    diff = a["staging_vs_prod"]
    assert diff["a"] == prod[-1]["model_id"] and diff["b"] != diff["a"]
    assert diff["datasets"]["only_b"], "staging was trained on data prod never saw"


def test_same_artifact_ids_in_a_fresh_home(demo: dict[str, Any], tmp_path: Path) -> None:
    again = run_demo(tmp_path / "demo-b")
    assert again["artifacts"] == demo["artifacts"]
    assert [(p["model_id"], p["decision"]) for p in again["promotions"]] == [
        (p["model_id"], p["decision"]) for p in demo["promotions"]
    ]


def test_the_demo_home_is_a_normal_keel_home(demo: dict[str, Any]) -> None:
    env = {**os.environ, "KEEL_HOME": demo["home"]}
    verify = subprocess.run(
        [KEEL, "artifacts", "verify", "--json"], capture_output=True, text=True, env=env
    )
    assert verify.returncode == 0 and json.loads(verify.stdout)["checked"] == len(demo["artifacts"])
    tail = subprocess.run(
        [KEEL, "audit", "tail", "--topic", "registry"], capture_output=True, text=True, env=env
    )
    assert tail.returncode == 0 and "REJECTED" in tail.stdout and "PROMOTED" in tail.stdout


def test_a_used_workdir_is_refused(demo: dict[str, Any]) -> None:
    out = subprocess.run(
        [KEEL, "demo", "--workdir", demo["workdir"]], capture_output=True, text=True
    )
    assert out.returncode == 2 and "already holds a Keel home" in out.stderr


@pytest.mark.integration
def test_the_same_story_on_kafka_and_redis(
    demo: dict[str, Any], tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from keel.codec import Codec
    from keel.events import decode_event
    from keel.log.kafka import KafkaEventLog, new_prefix
    from keel.schemas.registry import load_registry

    prefix = new_prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    out = subprocess.run(
        [
            KEEL,
            "demo",
            "--json",
            "--workdir",
            str(tmp_path / "k"),
            "--bus",
            f"kafka://{kafka_bootstrap}?prefix={prefix}",
            "--views",
            redis_url,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    on_kafka = json.loads(out.stdout)
    assert on_kafka["bus"].startswith("kafka://")
    assert on_kafka["artifacts"] == demo["artifacts"]
    assert [(p["model_id"], p["env"], p["decision"]) for p in on_kafka["promotions"]] == [
        (p["model_id"], p["env"], p["decision"]) for p in demo["promotions"]
    ]
    # every event of the story is on the broker, decodable, keyed by its subject
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix, provision_topics=False)
    codec = Codec(load_registry())
    records = list(log.read())
    log.close()
    events = [decode_event(codec, r.value) for r in records]
    assert len(events) == on_kafka["events"]
    assert all(r.key == e.envelope.subject for r, e in zip(records, events, strict=True))
    assert sum(type(e).__name__ == "ModelDeployed" for e in events) == len(on_kafka["deployments"])


@pytest.mark.integration
def test_audit_queries_answer_the_story_on_kafka_and_redis(
    demo: dict[str, Any], tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from keel.log.kafka import new_prefix

    prefix = new_prefix()
    views = redis_url.rsplit("/", 1)[0] + "/3?namespace=" + prefix.replace(".", ":")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    bus = f"kafka://{kafka_bootstrap}?prefix={prefix}"
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(tmp_path / "k"), "--bus", bus, "--views", views],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    story = json.loads(out.stdout)
    env.update(
        KEEL_BUS=bus,
        KEEL_VIEWS=views,
        KEEL_HOME=story["home"],
        KEEL_PROJECT=story["project"],
        KEEL_KEYS_DIR=story["keys_dir"],
    )
    at = story["answers"]["serving_prod_at"]["at"]
    q = subprocess.run(
        [KEEL, "audit", "serving", "--env", "prod", "--at", at, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert q.returncode == 0, q.stderr
    assert (
        json.loads(q.stdout)["serving"]["model_id"]
        == story["answers"]["serving_prod_at"]["serving"]["model_id"]
    )
    prod = [d["model_id"] for d in story["deployments"] if d["env"] == "prod"]
    w = subprocess.run(
        [KEEL, "audit", "why-promoted", prod[-1], "--env", "prod", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert w.returncode == 0, w.stderr
    assert json.loads(w.stdout)["over"] == prod[-2]
    v = subprocess.run(
        [KEEL, "audit", "verify", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    report = json.loads(v.stdout)
    assert v.returncode == 0 and report["ok"], v.stdout + v.stderr
    assert report["signed"] == report["events"] >= story["events"]

    # the blob attack on this backend too: another model's bytes under the first prod model's
    # ID, catalog updated to match; verify names it and rollback refuses it (recorded)
    from keel.artifacts.store import LocalArtifactStore
    from tests.attacks import swap_blob

    store = LocalArtifactStore(Path(story["home"]) / "artifacts")
    swap_blob(store, prod[0], prod[-1])
    store.close()
    v = subprocess.run(
        [KEEL, "audit", "verify", "--json"], capture_output=True, text=True, env=env, timeout=300
    )
    bad = {(p["kind"], p["where"]) for p in json.loads(v.stdout)["problems"]}
    assert v.returncode == 1 and ("bytes-mismatch", prod[0]) in bad, v.stdout
    r = subprocess.run(
        [KEEL, "deploy", "rollback", "--family", "breast_cancer", "--env", "prod", "--to", prod[0]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 2 and "refused" in r.stderr, r.stderr
