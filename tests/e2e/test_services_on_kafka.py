"""promote and deploy as separate processes in their own consumer groups on a real broker:
commands record facts; the services react to them over Kafka."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keel.codec import Codec
from keel.demo.story import monthly_batches, prepare_workdir, write_csv
from keel.events import decode_event
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

KEEL = str(Path(sys.executable).with_name("keel"))


def test_promote_and_deploy_services_react_over_kafka(tmp_path: Path, kafka_bootstrap: str) -> None:
    home, project = prepare_workdir(tmp_path / "wd")
    prefix = new_prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(home),
        KEEL_PROJECT=str(project),
        KEEL_KEYS_DIR=str(project.with_name("keys")),
        KEEL_INLINE_SERVICES="false",
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
    )

    def keel(*args: str) -> dict[str, Any]:
        out = subprocess.run(
            [KEEL, *args, "--json"], capture_output=True, text=True, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc

    holdout, batches = monthly_batches()
    ho = keel(
        "ingest",
        str(write_csv(tmp_path / "h.csv", holdout)),
        "--family",
        "breast_cancer",
        "--at",
        "2025-01-01",
    )
    ds = [
        keel(
            "ingest",
            str(write_csv(tmp_path / f"m{i}.csv", batches[i])),
            "--family",
            "breast_cancer",
            "--at",
            f"2025-0{i + 1}-05",
        )["dataset_id"]
        for i in range(3)
    ]

    services = [
        subprocess.Popen(
            [KEEL, "service", "run", name, "--max-idle", "60"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("promote", "deploy")
    ]
    try:
        trained = keel(
            "retrain",
            "--family",
            "breast_cancer",
            "--eval-dataset",
            ho["dataset_id"],
            *[a for d in ds for a in ("--dataset", d)],
            "--at",
            "2025-03-25",
        )
        assert trained["decisions"] == []  # inline services are off: nothing decided in-process
        model = trained["model_id"]
        log = KafkaEventLog(kafka_bootstrap, prefix=prefix, provision_topics=False)
        codec = Codec(load_registry())
        deployed: list[Any] = []
        deadline = time.monotonic() + 120  # bounded wait for the services' reactions
        while time.monotonic() < deadline:
            events = [decode_event(codec, r.value) for r in log.read(["deployments", "registry"])]
            deployed = [e for e in events if type(e).__name__ == "ModelDeployed"]
            if {e.env for e in deployed} >= {"staging", "prod"}:
                break
            time.sleep(1)
        log.close()
        if {e.env for e in deployed} != {"staging", "prod"}:
            for p in services:
                p.terminate()
            logs = [p.communicate(timeout=60) for p in services]
            pytest.fail(f"services did not react in time: {logs}")
        assert {(e.env, e.model_id) for e in deployed} == {("staging", model), ("prod", model)}
        promoted = [e for e in events if type(e).__name__ == "ModelPromoted"]
        assert sorted(e.env for e in promoted) == ["prod", "staging"]
        assert all(
            e.envelope.producer.service in ("promote", "deploy") for e in promoted + deployed
        )
    finally:
        for p in services:
            p.terminate()
        for p in services:
            p.wait(timeout=60)
