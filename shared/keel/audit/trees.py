"""The log's Merkle trees as Keel keeps them: what a leaf is, where the trees' right edges live
in the views, and the events the projector writes about them (Checkpoint) or about events it
refused (audit:rejected).

A leaf is one stored log record: `topic/partition/offset\\n` followed by the record's bytes as
stored, so a leaf cannot be moved to another position or topic without changing the tree.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.events import envelope
from keel.events import generated as g
from keel.log.port import LogRecord, TopicPartition
from keel.signing import Signer, Verdict
from keel.topics import AUDIT_TOPIC
from keel.views.port import Put, SetAdd, Update

TREES = "audit:trees"  # {"topic/partition": Frontier doc}
CHECKPOINTED = "audit:checkpointed"  # tree sizes of the last published checkpoint
REJECTED = "audit:rejected"  # positions of events kept out of the views; a doc per position
AUDIT_IDENTITY = cp.AUDIT_IDENTITY


def tp_key(tp: TopicPartition) -> str:
    return f"{tp[0]}/{tp[1]}"


def parse_tp(key: str) -> TopicPartition:
    topic, _, partition = key.rpartition("/")
    return topic, int(partition)


def leaf_data(topic: str, partition: int, offset: int, value: bytes) -> bytes:
    return b"%s/%d/%d\n" % (topic.encode(), partition, offset) + value


def leaf(rec: LogRecord) -> bytes:
    return merkle.leaf_hash(leaf_data(rec.topic, rec.partition, rec.offset, rec.value))


def position(rec: LogRecord) -> str:
    return f"{rec.topic}/{rec.partition}/{rec.offset}"


def proof_fields(rec: LogRecord, index: int, size: int, path: list[bytes]) -> dict[str, Any]:
    """An inclusion proof as a third party reads it (`keel audit prove`, review packs): the
    leaf's bytes, where it sits and the audit path, up to the root of a tree of `size`."""
    return {
        "position": position(rec),
        "leaf_index": index,
        "tree_size": size,
        "leaf_data": base64.b64encode(
            leaf_data(rec.topic, rec.partition, rec.offset, rec.value)
        ).decode(),
        "inclusion_path": [h.hex() for h in path],
    }


def rejection(rec: LogRecord, event: Any, verdict: Verdict) -> list[Update]:
    env = event.envelope
    doc = {
        "position": position(rec),
        "event_id": env.event_id,
        "event_type": event.EVENT_TYPE,
        "actor": env.actor,
        "producer": env.producer.service,
        "signed_by": verdict.identity,
        "problem": verdict.problem,
    }
    return [Put(f"{REJECTED}:{position(rec)}", doc), SetAdd(REJECTED, (position(rec),))]


def checkpoint_event(
    trees: Mapping[TopicPartition, merkle.Frontier], signer: Signer, code_version: str
) -> g.Checkpoint:
    """One signed note per tree, all with the audit identity's active key, at one time."""
    now = datetime.now(UTC)
    heads = []
    for tp in sorted(trees):
        tree = trees[tp]
        root = tree.root()
        note = cp.sign(cp.body(tp[0], tp[1], tree.size, root, now, signer.trust.digest()), signer)
        heads.append(
            g.TreeHead(topic=tp[0], partition=tp[1], size=tree.size, root=root.hex(), note=note)
        )
    key = signer.trust.active_key(AUDIT_IDENTITY)
    return g.Checkpoint(
        envelope=envelope(
            "Checkpoint",
            subject=AUDIT_TOPIC,
            service="audit",
            code_version=code_version,
            actor="projector",
            correlation_id="checkpoint",
            occurred_at=now,
        ),
        trees=tuple(heads),
        key_id=key.id if key else "",
    )
