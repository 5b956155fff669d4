"""Issue 33, item 2 on Kafka + Redis (decision 0022): the demo records its keyring in the
trail's keyring topic; a key the attacker adds to keys.toml, with a forgery appended to the
broker signed by it, fails verify naming the key. Embedded: tests/e2e/test_keyring_trail.py."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from keel.log.kafka import new_prefix
from keel.settings import Settings
from tests.demo_home import KEEL, demo_home
from tests.e2e.test_keyring_trail import add_attacker_key_and_forge

pytestmark = pytest.mark.integration


def test_keyring_on_kafka_and_redis(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    bus = f"kafka://{kafka_bootstrap}?prefix={new_prefix()}"
    views = f"{redis_url}?namespace=keyring{time.time_ns()}:"
    demo, env = demo_home(tmp_path / "k", bus, views)

    def verify() -> dict:
        r = subprocess.run(
            [KEEL, "audit", "verify", "--json"], capture_output=True, text=True, env=env
        )
        assert r.stdout.startswith("{"), r.stderr
        return dict(json.loads(r.stdout))

    doc = verify()
    assert doc["ok"], doc["problems"]
    assert doc["keyring"]["keys"] >= 2  # the admin and the services, recorded on the broker
    settings = Settings(
        home=Path(demo["home"]),
        bus=bus,
        views=views,
        project=Path(demo["project"]),
        keys_dir=Path(demo["keys_dir"]),
    )
    key = add_attacker_key_and_forge(tmp_path / "k", settings)
    doc = verify()
    assert not doc["ok"]
    details = [p["detail"] for p in doc["problems"] if p["area"] == "keyring"]
    assert any(key.id in d for d in details), doc["problems"]
