"""People in the loop (issue 14), through the CLI on a demo home: a prod policy that requires
approval by someone other than the person who triggered the promotion; approve, reject,
re-run the gate, deploy a chosen model (and override its failed gate); what exists, paginated.
The same approval flow runs on Kafka + Redis."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e

RELEASE = [
    "PromotionReviewed",
    "ModelPromoted",
    "PromotionRejected",
    "PromotionPending",
    "ModelDeployed",
    "ArtifactRecorded",
    "ArtifactRejected",
    "SchemaReconciled",
    "SchemaReconciliationFailed",
]
Keel = Callable[..., tuple[int, Any]]


def with_approvals(env: dict[str, str]) -> Keel:
    """Prod requires one approval by someone else than the trigger; alice and bob are people
    with keys and a release role. Returns a runner: keel(*args, who=...) -> (exit, JSON)."""
    project = Path(env["KEEL_PROJECT"])
    text = project.read_text().replace(
        'beat_incumbent = { metric = "roc_auc", by = 0.0003 }',
        'beat_incumbent = { metric = "roc_auc", by = -0.001 }\n'
        'approval = "required"\nseparate_approver = true',
    )
    assert 'approval = "required"' in text
    for person in ("alice", "bob"):
        text += f"\n[identities.{person}]\nemits = {json.dumps(RELEASE)}\n"
    project.write_text(text)
    subprocess.run([KEEL, "keys", "create", "alice", "bob"], env=env, check=True, timeout=60)

    def keel(*args: str, who: str = "alice") -> tuple[int, Any]:
        run_env = {**env, "KEEL_IDENTITY": who, "KEEL_ACTOR": who}
        out = subprocess.run(
            [KEEL, *args, "--json"], capture_output=True, text=True, env=run_env, timeout=300
        )
        try:
            doc = json.loads(out.stdout) if out.stdout.strip() else out.stderr
        except json.JSONDecodeError:
            doc = out.stdout + out.stderr
        return out.returncode, doc

    return keel


def prod_models(keel: Keel) -> list[str]:
    code, doc = keel("deployments", "list", "--env", "prod")
    assert code == 0, doc
    return [d["model_id"] for d in doc["deployments"]]


def approval_flow(keel: Keel) -> None:
    """pending -> refused for the trigger -> approved by another -> deployed; then pending ->
    rejected -> nothing deployed."""
    current, previous = prod_models(keel)[:2]
    code, doc = keel("promote", "evaluate", previous[:12], "--env", "prod", who="alice")
    assert code == 0, doc
    assert doc["decision"] == "PromotionPending" and not doc["deployed"]
    assert doc["pending"]["excluded_approvers"] == ["alice"] and doc["serving"] == current
    code, waiting = keel("promote", "pending", "--family", "breast_cancer")
    assert [p["model_id"] for p in waiting["pending"]] == [previous]

    code, refused = keel("promote", "approve", previous[:12], "--env", "prod", "--reason", "ok")
    assert code != 0 and "someone else" in str(refused)
    code, doc = keel(
        "promote", "approve", previous, "--env", "prod", "--reason", "checked the eval", who="bob"
    )
    assert code == 0, doc
    assert doc["deployed"] and doc["serving"] == previous and doc.get("pending") is None

    code, why = keel("audit", "why", "--env", "prod")
    promotion = next(s for s in why["steps"] if s["step"] == "promotion")
    assert promotion["approved_by"] == ["bob"] and promotion["trigger"] == "approval"
    code, wp = keel("audit", "why-promoted", previous[:12], "--env", "prod")
    reviews = [(r["decision"], r["actor"]) for r in wp["reviews"]]
    assert ("pending", "alice") in reviews and ("approved", "bob") in reviews
    code, hist = keel("audit", "history", "--limit", "1000")
    decisions = [(d["decision"], d["model_id"], d["actor"]) for d in hist["decisions"]]
    assert ("approved", previous, "bob") in decisions and (
        "pending",
        previous,
        "alice",
    ) in decisions

    # the model it replaced passes again (under the policy as it is now) and is rejected
    code, doc = keel("promote", "evaluate", current[:12], "--env", "prod", who="alice")
    assert doc["decision"] == "PromotionPending"
    code, doc = keel(
        "promote", "reject", current[:12], "--env", "prod", "--reason", "not now", who="bob"
    )
    assert code == 0, doc
    assert not doc["deployed"] and doc["serving"] == previous and doc.get("pending") is None
    code, waiting = keel("promote", "pending", "--family", "breast_cancer")
    assert waiting["pending"] == []
    assert prod_models(keel)[0] == previous
    code, again = keel(
        "promote", "approve", current[:12], "--env", "prod", "--reason", "x", who="bob"
    )
    assert code != 0 and "waiting for approval" in str(again)


def test_approvals_overrides_and_regates_are_recorded_and_shown(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path / "wd")
    keel = with_approvals(env)
    approval_flow(keel)
    serving = prod_models(keel)[0]

    # a chosen model that fails prod's gate: refused (the failed gate is recorded), then
    # deployed with --override, shown as an override with its reason
    code, models = keel("models", "list")
    worst = min(models["models"], key=lambda m: m["metrics"]["roc_auc"])["model_id"]
    code, refused = keel("deploy", worst[:12], "--env", "prod", "--reason", "incident 42")
    assert code != 0 and "--override" in str(refused)
    assert prod_models(keel)[0] == serving
    code, doc = keel(
        "deploy", worst[:12], "--env", "prod", "--reason", "incident 42", "--override", who="bob"
    )
    assert code == 0, doc
    assert doc["override"] and doc["deployed"]
    code, why = keel("audit", "why", "--env", "prod")
    dep, overridden = why["steps"][0], why["steps"][1]
    assert dep["kind"] == "override" and dep["reason"] == "incident 42" and dep["actor"] == "bob"
    assert overridden["step"] == "overridden decision" and overridden["decision"] == "rejected"
    assert not all(g["passed"] for g in overridden["gates"])
    code, deps = keel("deployments", "list", "--env", "prod", "--limit", "1")
    assert deps["deployments"][0]["kind"] == "override"
    code, wp = keel("audit", "why-promoted", worst[:12], "--env", "prod")
    assert code != 0 and "by override" in str(wp)
    code, hist = keel("audit", "history", "--limit", "1000")
    triggers = {(d["decision"], d.get("trigger")) for d in hist["decisions"]}
    assert {("rejected", "deploy"), ("pending", "evaluate"), ("promoted", "approval")} <= triggers
    assert all(d.get("policy_version") for d in hist["decisions"] if d.get("trigger") == "evaluate")

    # back from the override to the model before it
    code, doc = keel("deploy", "rollback", "--family", "breast_cancer", "--env", "prod")
    assert code == 0, doc
    code, plain = subprocess_text(env, "audit", "why", "--env", "prod")
    assert "{'" not in plain and "[{" not in plain  # readable, no Python dict dumps

    code, verify = keel("audit", "verify")
    assert code == 0, verify


def subprocess_text(env: dict[str, str], *args: str) -> tuple[int, str]:
    out = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=120)
    return out.returncode, out.stdout


def test_lists_paginate_newest_first(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path / "wd")

    def keel(*args: str) -> Any:
        out = subprocess.run(
            [KEEL, *args, "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    assert keel("families")["families"] == ["breast_cancer"]
    everything = keel("models", "list", "--limit", "1000")["models"]
    assert len(everything) >= 4
    pages = [keel("models", "list", "--limit", "2", "--offset", str(o))["models"] for o in (0, 2)]
    assert [m["model_id"] for p in pages for m in p] == [m["model_id"] for m in everything[:4]]
    trained = [m["trained_at"] for m in everything]
    assert trained == sorted(trained, reverse=True)
    assert all(len(m["model_id"]) == 64 for m in everything)  # full IDs in JSON

    deps = keel("deployments", "list", "--env", "prod", "--limit", "1000")["deployments"]
    assert deps[0]["until"] is None and all(d["until"] for d in deps[1:])
    page2 = keel("deployments", "list", "--env", "prod", "--limit", "1", "--offset", "1")
    assert page2["deployments"][0]["until"] == deps[0]["since"]  # ends where the next began
    assert [m["model_id"] for m in keel("models", "list", "--env", "prod")["models"]] == [
        d["model_id"] for d in deps[:50]
    ]
    datasets = keel("datasets", "list", "--limit", "1000")["datasets"]
    assert sum(d["quarantined"] for d in datasets) > 0  # the demo's March records
    models_only = keel("artifacts", "list", "--kind", "model", "--limit", "1000")["artifacts"]
    assert {a["id"] for a in models_only} == {m["model_id"] for m in everything}
    assert len(keel("artifacts", "list", "--limit", "3")["artifacts"]) == 3
    wide_env = {**env, "COLUMNS": "300"}  # a wide terminal: each full ID on one line
    table = subprocess.run(
        [KEEL, "models", "list", "--wide"],
        capture_output=True,
        text=True,
        env=wide_env,
        timeout=120,
    )
    assert everything[0]["model_id"] in table.stdout


@pytest.mark.integration
def test_approval_flow_on_kafka_and_redis(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    from keel.log.kafka import new_prefix

    ns = f"people{os.getpid()}{new_prefix()}:"
    bus = f"kafka://{kafka_bootstrap}?prefix={new_prefix()}"
    views = f"{redis_url}?namespace={ns}"
    _, env = demo_home(tmp_path / "wd", bus, views)
    approval_flow(with_approvals(env))


def test_client_cli_and_api_give_the_same_answers(tmp_path: Path) -> None:
    """One implementation of each answer: keel.Client, `keel ... --json` and the audit HTTP
    API agree on the demo, ID prefixes included."""
    from fastapi.testclient import TestClient

    from keel.bootstrap import bootstrap
    from keel.client import Client
    from keel_services.audit.http import create_app
    from tests.demo_home import demo_settings

    demo, env = demo_home(tmp_path / "wd")
    fam, at = "breast_cancer", "2026-01-01T00:00:00+00:00"

    def cli(*args: str) -> Any:
        out = subprocess.run(
            [KEEL, *args, "--json"], capture_output=True, text=True, env=env, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def doc(answer: Any) -> Any:
        if isinstance(answer, list):
            return [doc(a) for a in answer]
        return answer.model_dump(mode="json", exclude_unset=True)

    with Client(demo_settings(demo)) as k:
        deps = k.deployments(fam, "prod", limit=1000)
        now, before = deps[0].model_id[:12], deps[1].model_id[:12]
        client = {
            "serving": doc(k.serving(fam, "prod", at=at)),
            "why": doc(k.why(fam, "prod", at=at)),
            "why_promoted": doc(k.why_promoted(now, env="prod")),
            "diff": doc(k.diff(before, now)),
            "history": doc(k.history(fam, 0, 1000)),
            "models": doc(k.models(fam, limit=1000)),
            "datasets": doc(k.datasets(fam, limit=1000)),
            "deployments": doc(deps),
            "artifacts": doc(k.artifacts("model", limit=1000)),
        }
        report = k.verify()
        assert report.ok and report.events > 100 and report.problems == []
        ancestors = {n.kind for n in k.lineage(now, "up", 5) if n.depth < 0}
        assert {"dataset", "feature_set"} <= ancestors
    assert client["why_promoted"]["promotion"]["model_id"].startswith(now)
    by_cli = {
        "serving": cli("audit", "serving", "--env", "prod", "--at", at),
        "why": cli("audit", "why", "--env", "prod", "--at", at),
        "why_promoted": cli("audit", "why-promoted", now, "--env", "prod"),
        "diff": cli("audit", "diff", before, now),
        "history": cli("audit", "history", "--limit", "1000")["decisions"],
        "models": cli("models", "list", "--limit", "1000")["models"],
        "datasets": cli("datasets", "list", "--limit", "1000")["datasets"],
        "deployments": cli("deployments", "list", "--env", "prod", "--limit", "1000")[
            "deployments"
        ],
        "artifacts": cli("artifacts", "list", "--kind", "model", "--limit", "1000")["artifacts"],
    }
    assert by_cli == client
    auth = {"Authorization": "Bearer t"}
    # "t" reads; commands need an act token, which names its person (keel.secure.tokens)
    from keel.secure.tokens import TokenBook, new_token
    from keel_services.entrypoints.client import COMMANDS

    book = TokenBook(tmp_path / "api-tokens.json", legacy_read="t")
    record, act_token = new_token("act", "carol")
    book.add(record)
    acts = {"Authorization": f"Bearer {act_token}"}
    with (
        bootstrap(demo_settings(demo)) as rt,
        TestClient(create_app(rt, token="t", tokens=book, commands=COMMANDS)) as api,
    ):

        def get(path: str, key: str | None = None) -> Any:
            r = api.get(path, headers=auth)
            assert r.status_code == 200, r.text
            body = r.json()
            body.pop("freshness")
            return body[key] if key else body

        by_api = {
            "serving": get(f"/v1/serving/{fam}/prod?at={at.replace('+', '%2B')}"),
            "why": get(f"/v1/why/{fam}/prod?at={at.replace('+', '%2B')}"),
            "why_promoted": get(f"/v1/models/{now}/why-promoted?env=prod"),
            "diff": get(f"/v1/models/{before}/diff/{now}"),
            "history": get(f"/v1/registry/{fam}?limit=1000", "decisions"),
            "models": get(f"/v1/families/{fam}/models?limit=1000", "models"),
            "datasets": get(f"/v1/families/{fam}/datasets?limit=1000", "datasets"),
            "deployments": get(f"/v1/families/{fam}/deployments/prod?limit=1000", "deployments"),
            "artifacts": get("/v1/artifacts?kind=model&limit=1000", "artifacts"),
        }
        assert by_api == client
        assert api.get("/v1/models/zzzzzzzz/why-promoted", headers=auth).status_code == 404
        # commands are POSTs: a gate that fails is refused with the reason (409), recorded
        worst = min(client["models"], key=lambda m: m["metrics"]["roc_auc"])["model_id"]
        r = api.post(
            f"/v1/models/{worst[:12]}/deploy",
            json={"env": "prod", "reason": "try it"},
            headers=acts,
        )
        assert r.status_code == 409 and "--override" in r.text
        paths = set(api.get("/openapi.json").json()["paths"])
        assert {"/v1/families/{family}/models", "/v1/models/{model}/approve"} <= paths
