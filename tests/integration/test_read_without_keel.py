"""Keel's topics read by a consumer that knows nothing of Keel (docs/reading-topics.md):
confluent-kafka with read_committed, writer schemas by fingerprint from the schemas topic,
fastavro for the bytes. The decoding part below imports nothing from keel."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, TopicPartition

from keel.log.kafka import new_prefix
from keel_services.entrypoints.demo.story import monthly_batches, prepare_workdir, write_csv
from tests.infra import kafka_conf

pytestmark = pytest.mark.integration
KEEL = str(Path(sys.executable).with_name("keel"))
MAGIC = b"\xc3\x01"


def read_all(bootstrap: str, topics: list[str]) -> list[Any]:
    """Every committed record of the topics: from the beginning until nothing more arrives for
    three seconds (bounded at two minutes)."""
    c = Consumer(
        {
            **kafka_conf(bootstrap, "audit"),
            "group.id": "reader-without-keel",
            "isolation.level": "read_committed",  # Keel writes in transactions
            "enable.auto.commit": False,
        }
    )
    try:
        meta = c.list_topics(timeout=10).topics
        c.assign([TopicPartition(t, p, 0) for t in topics for p in meta[t].partitions])
        out: list[Any] = []
        idle, deadline = 0, time.monotonic() + 120
        while idle < 3 and time.monotonic() < deadline:
            batch = [m for m in c.consume(500, timeout=1.0) if m.error() is None]
            out.extend(batch)
            idle = 0 if batch else idle + 1
        return out
    finally:
        c.close()


def test_every_record_decodes_with_fastavro_and_the_schemas_topic(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    home, project = prepare_workdir(tmp_path / "wd")
    prefix = new_prefix()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(home),
        KEEL_PROJECT=str(project),
        KEEL_KEYS_DIR=str(project.with_name("keys")),
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
    )
    holdout, batches = monthly_batches()
    for i, rows in enumerate([holdout, batches[0]]):
        csv = write_csv(tmp_path / f"b{i}.csv", rows)
        cmd = [KEEL, "ingest", str(csv), "--family", "breast_cancer", "--at", f"2025-0{i + 1}-01"]
        assert subprocess.run(cmd, env=env, capture_output=True, timeout=300).returncode == 0
    out = subprocess.run(
        [KEEL, "audit", "checkpoint", "--to", str(tmp_path / "cp.txt")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr

    # -- from here on: what any team could write without Keel --------------------------------
    schemas_topic = prefix + "schemas"
    writer_schemas = {
        m.key().decode(): fastavro.parse_schema(json.loads(m.value()))
        for m in read_all(kafka_bootstrap, [schemas_topic])
    }
    for m in read_all(kafka_bootstrap, [schemas_topic]):
        assert "__fastavro" not in m.value().decode() and "__named" not in m.value().decode()
    event_topics = [
        prefix + t
        for t in (
            *("ingest", "quarantine", "features", "training", "registry", "deployments"),
            *("artifacts", "audit"),
        )
    ]
    records = read_all(kafka_bootstrap, event_topics)
    types: dict[str, int] = {}
    for m in records:
        value, headers = m.value(), dict(m.headers() or [])
        assert value[:2] == MAGIC, "Avro single-object encoding"
        fp = value[2:10].hex()
        assert headers["keel-schema-fingerprint"].decode() == fp
        assert headers["content-type"].startswith(b"application/vnd.apache.avro+binary")
        assert fp in writer_schemas, f"{m.topic()}@{m.offset()}: writer schema not published"
        event = fastavro.schemaless_reader(io.BytesIO(value[10:]), writer_schemas[fp])
        assert event["envelope"]["event_type"] == headers["keel-event-type"].decode()
        types[event["envelope"]["event_type"]] = types.get(event["envelope"]["event_type"], 0) + 1
    assert {"ArtifactRecorded", "DatasetIngested", "Checkpoint"} <= set(types), types
    assert sum(types.values()) == len(records) >= 7

    # -- the trees from the broker's records with hashlib alone (leaf format 2, decision 0021):
    # each leaf commits to the position, the broker's append time, the writer's time, the key,
    # the value and the signature record; the newest checkpoint's roots must come out
    checkpoints = []
    for m in read_all(kafka_bootstrap, [prefix + "audit"]):
        value = m.value()
        event = fastavro.schemaless_reader(
            io.BytesIO(value[10:]), writer_schemas[value[2:10].hex()]
        )
        if event["envelope"]["event_type"] == "Checkpoint":
            checkpoints.append(event)
    newest = max(checkpoints, key=lambda e: e["envelope"]["occurred_at"])
    leaves: dict[tuple[str, int], list[tuple[int, bytes]]] = {}
    for m in read_all(kafka_bootstrap, sorted({prefix + t["topic"] for t in newest["trees"]})):
        headers, (kind, stamped) = dict(m.headers() or []), m.timestamp()
        assert kind == 2, "the broker's LogAppendTime"
        key, value, sig = m.key() or b"", m.value(), headers.get("keel-sig") or b""
        topic = m.topic()[len(prefix) :]
        data = b"keel-leaf/2\n%s/%d/%d\n%d %d\n%d %d %d\n" % (
            topic.encode(),
            m.partition(),
            m.offset(),
            stamped,
            int(headers["keel-time"]),
            len(key),
            len(value),
            len(sig),
        )
        leaf = hashlib.sha256(b"\x00" + data + key + value + sig).digest()
        leaves.setdefault((topic, m.partition()), []).append((m.offset(), leaf))
    for tree in newest["trees"]:
        ordered = [h for _, h in sorted(leaves[(tree["topic"], tree["partition"])])]
        assert mth(ordered[: tree["size"]]).hex() == tree["root"], tree["topic"]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 2.1.1's Merkle Tree Hash of leaf hashes."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(leaves[:k]) + mth(leaves[k:])).digest()
