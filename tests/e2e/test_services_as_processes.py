"""Every service in its own OS process on real Kafka, Redis and an S3 object store (SeaweedFS),
secured, each process holding only its own principal's credentials:
a retrain flows ingest -> feature -> train -> promote -> deploy; then each service is SIGKILLed
once mid-flow and restarted, and every flow still completes with nothing missing and nothing
recorded twice (checked by IDs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from deploy import security
from deploy.processes import free_port
from keel.codec import Codec
from keel.events import decode_event
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.secure.credentials import secrets_for, split_address
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

KEEL = str(Path(sys.executable).with_name("keel"))
FAMILY = "breast_cancer"
CONSUMERS = ("feature", "train", "promote", "deploy", "projector")
TOKEN = "e2e-token"


class Stack:
    def __init__(self, env: dict[str, str], logs: Path, ingest_port: int) -> None:
        self.env, self.logs, self.ingest_port = env, logs, ingest_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        args = ["service", "run", name]
        if name == "ingest":
            args += ["--port", str(self.ingest_port)]
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 (the process owns it)
        self.procs[name] = subprocess.Popen(
            [KEEL, *args], env=self.env_of(name), stdout=out, stderr=subprocess.STDOUT
        )

    def env_of(self, principal: str) -> dict[str, str]:
        """Each process holds only its own principal's secrets, as a deployed service does."""
        stack = secrets_for(*split_address(self.env["KEEL_BUS"].split("//")[1].split("?")[0]))
        assert stack is not None, "the test stack is secured"
        own = security.holding(stack.root, principal, self.logs.parent / "secrets" / principal)
        return {**self.env, "KEEL_SECRETS": str(own)}

    def kill(self, name: str) -> None:
        p = self.procs[name]
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)

    def stop_all(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    def tails(self) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-1500:]}"
            for f in sorted(self.logs.glob("*.log"))
        )


def test_a_retrain_flows_through_five_processes_and_survives_kills(
    tmp_path: Path,
    kafka_bootstrap: str,
    redis_url: str,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home, project = prepare_workdir(tmp_path / "wd")
    prefix = new_prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEEL_", "AWS_"))}
    env.update(
        # the endpoint only: each process signs in with its own principal's keys
        {k: v for k, v in s3_env.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET"))},
        KEEL_HOME=str(home),
        KEEL_PROJECT=str(project),
        KEEL_KEYS_DIR=str(project.with_name("keys")),
        KEEL_INLINE_SERVICES="false",
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        KEEL_VIEWS=redis_url.rsplit("/", 1)[0] + "/5",
        KEEL_ARTIFACTS=f"s3://keel-test/{prefix}",  # a write-once bucket
        KEEL_API_TOKEN=TOKEN,
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(env, logs, free_port())
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix, provision_topics=True)
    codec = Codec(load_registry())

    def events() -> list[Any]:
        return [decode_event(codec, r.value) for r in log.read()]

    def post(rows: list[dict[str, Any]], at: str) -> str:
        req = urllib.request.Request(
            f"http://127.0.0.1:{stack.ingest_port}/v1/families/{FAMILY}/records?at={at}",
            data=json.dumps(rows).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
        with urllib.request.urlopen(req, timeout=120) as resp:
            return str(json.loads(resp.read())["dataset_id"])

    def wait_ingest_up() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{stack.ingest_port}/healthz", timeout=2
                ):
                    return
            except OSError:
                time.sleep(0.5)
        pytest.fail("ingest did not answer:\n" + stack.tails())

    def retrain(datasets: list[str], holdout: str, at: str) -> str:
        out = subprocess.run(
            [KEEL, "retrain", "--family", FAMILY, "--eval-dataset", holdout, "--at", at, "--json"]
            + [a for d in datasets for a in ("--dataset", d)],
            capture_output=True,
            text=True,
            env=stack.env_of("cli"),
            timeout=300,
        )
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        assert doc["model_id"] is None  # recorded; the services do the work
        return str(doc["request_id"])

    def evaluated_for(request_id: str, evs: list[Any]) -> Any:
        return next(
            (
                e
                for e in evs
                if type(e).__name__ == "ModelEvaluated" and e.envelope.causation_id == request_id
            ),
            None,
        )

    def wait_for(what: str, done: Any, timeout: float = 180) -> list[Any]:
        deadline = time.monotonic() + timeout  # bounded: the services react within it or fail
        while time.monotonic() < deadline:
            evs = events()
            if done(evs):
                return evs
            time.sleep(1)
        pytest.fail(f"{what} did not happen within {timeout:.0f} s:\n" + stack.tails())

    def first_decided(request_id: str, evs: list[Any]) -> bool:
        ev = evaluated_for(request_id, evs)
        return ev is not None and any(
            type(e).__name__ in ("ModelPromoted", "PromotionRejected")
            and e.envelope.causation_id == ev.envelope.event_id
            for e in evs
        )

    holdout, batches = monthly_batches()
    try:
        for name in ("ingest", *CONSUMERS):
            stack.start(name)
        wait_ingest_up()
        ho = post(holdout, "2025-01-01")
        datasets = [post(batches[i], f"2025-{i + 1:02d}-05") for i in range(3)]

        # 1. the whole flow, every service alive
        first = retrain(datasets, ho, "2025-03-25")
        evs = wait_for(
            "the first model's deployment to prod",
            lambda evs: any(type(e).__name__ == "ModelDeployed" and e.env == "prod" for e in evs),
        )
        model = evaluated_for(first, evs).model_id
        assert {(e.env, e.model_id) for e in evs if type(e).__name__ == "ModelDeployed"} == {
            ("staging", model),
            ("prod", model),
        }

        # 2. each service killed once while a flow is under way, then restarted
        requests = [first]
        month = 3
        for victim in ("ingest", "feature", "train", "promote", "deploy", "projector"):
            if victim == "ingest":  # killed between two batches of one flow
                stack.kill("ingest")
                stack.start("ingest")
                wait_ingest_up()
            month += 1
            datasets.append(post(batches[month - 1], f"2025-{month:02d}-05"))
            rid = retrain(list(datasets), ho, f"2025-{month:02d}-25")
            requests.append(rid)
            if victim != "ingest":
                time.sleep(0.3 * (len(requests) % 3))  # kill at different points of the flow
                stack.kill(victim)
                stack.start(victim)
            wait_for(
                f"request {rid[:8]}'s decision after killing {victim}",
                lambda e, r=rid: first_decided(r, e),
            )
    finally:
        tails = stack.tails()
        stack.stop_all()

    evs = events()
    log.close()
    ids = Counter(e.envelope.event_id for e in evs)
    assert not [i for i, n in ids.items() if n > 1], "an event was appended twice"
    recorded = Counter(e.artifact_id for e in evs if type(e).__name__ == "ArtifactRecorded")
    assert not [a for a, n in recorded.items() if n > 1], "an artifact was announced twice"
    by_cause = Counter(
        (type(e).__name__, e.envelope.causation_id, getattr(e, "env", ""))
        for e in evs
        if e.envelope.causation_id
    )
    twice = [k for k, n in by_cause.items() if n > 1 and k[0] != "FeaturesBuilt"]
    assert not twice, f"recorded twice for one cause: {twice}\n{tails}"
    for rid in requests:
        built = [
            e for e in evs if type(e).__name__ == "FeaturesBuilt" and e.envelope.causation_id == rid
        ]
        assert len(built) == 2, (rid, [b.dataset_ids for b in built])  # training and held-out
        assert evaluated_for(rid, evs) is not None
    trained = Counter(e.model_id for e in evs if type(e).__name__ == "ModelTrained")
    assert len(trained) == len(requests) and set(trained.values()) == {1}
    producers = {e.envelope.producer.service for e in evs}
    assert {"ingest", "feature", "train", "promote", "deploy"} <= producers
    # every artifact the events name is in the object store, its bytes intact
    from keel.artifacts.s3 import S3ArtifactStore

    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    store = S3ArtifactStore(env["KEEL_ARTIFACTS"])
    assert set(recorded) <= set(store.all_ids())
    assert all(problem is None for _, problem in store.verify())
