"""The log's Merkle trees as Keel keeps them: what a leaf is, where the trees' right edges live
in the views, and the events the projector writes about them (Checkpoint) or about events it
refused (audit:rejected).

A leaf is one stored log record and everything an answer reads from it (decision 0021). Format 2:

    keel-leaf/2\\n
    <topic>/<partition>/<offset>\\n
    <recorded ms> <writer ms>\\n                 the log's stamp and the writer's timestamp
    <key length> <value length> <sig length>\\n  decimal byte counts
    <key bytes><value bytes><signature record bytes>

so a record cannot move, be re-stamped, re-keyed or re-signed without changing the tree. Format 1
(`topic/partition/offset\\n` + value bytes) is what trees held before: a tree keeps format 1
below `Frontier.leaf2_from` (the size it had when Keel switched), and every checkpoint states
where format 2 starts (`leaf 2 from N`); a note without that line is all format 1.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from keel.audit import checkpoint as cp
from keel.audit import keys, merkle
from keel.events import envelope
from keel.events import generated as g
from keel.log.port import LogRecord, TopicPartition
from keel.signing import Signer, Verdict
from keel.topics import AUDIT_TOPIC
from keel.views.port import Put, SetAdd, Update

TREES = keys.TREES  # {"topic/partition": Frontier doc}
CHECKPOINTED = keys.CHECKPOINTED  # tree sizes of the last published checkpoint
REJECTED = keys.REJECTED  # positions of events kept out of the views; a doc per position
AUDIT_IDENTITY = cp.AUDIT_IDENTITY


def tp_key(tp: TopicPartition) -> str:
    return f"{tp[0]}/{tp[1]}"


def parse_tp(key: str) -> TopicPartition:
    topic, _, partition = key.rpartition("/")
    return topic, int(partition)


LEAF_V2 = b"keel-leaf/2\n"


def leaf_data_v1(topic: str, partition: int, offset: int, value: bytes) -> bytes:
    """Format 1: the position and the value only (trees before decision 0021)."""
    return b"%s/%d/%d\n" % (topic.encode(), partition, offset) + value


def leaf_data(rec: LogRecord) -> bytes:
    """Format 2: everything a read gives (see the module's docstring)."""
    key, sig = rec.key.encode(), rec.sig or b""
    return b"".join(
        (
            LEAF_V2,
            b"%s/%d/%d\n%d %d\n%d %d %d\n"
            % (
                rec.topic.encode(),
                rec.partition,
                rec.offset,
                rec.recorded_ms,
                rec.timestamp_ms,
                len(key),
                len(rec.value),
                len(sig),
            ),
            key,
            rec.value,
            sig,
        )
    )


def leaf(rec: LogRecord) -> bytes:
    return merkle.leaf_hash(leaf_data(rec))


def leaf_v1(rec: LogRecord) -> bytes:
    return merkle.leaf_hash(leaf_data_v1(rec.topic, rec.partition, rec.offset, rec.value))


def leaf_at(rec: LogRecord, index: int, leaf2_from: int) -> bytes:
    """The leaf of `rec` as leaf `index` of a tree whose format 2 starts at `leaf2_from`."""
    return leaf(rec) if index >= leaf2_from else leaf_v1(rec)


def leaf_switches(notes: Iterable[cp.Note]) -> dict[TopicPartition, int]:
    """Where each tree's leaf format 2 starts, from checkpoint notes the caller trusts (checked
    signatures): the largest note that states it says so; a tree with format-1 notes only
    switched after the largest of them (leaves no checkpoint covered were never signed, so
    format 2 can take them). Trees no note names are format 2 from their first leaf."""
    stated: dict[TopicPartition, tuple[int, int]] = {}  # tree -> (note size, leaf2_from)
    v1: dict[TopicPartition, int] = {}
    for note in notes:
        tp = note.tree
        if note.leaf2_from is None:
            v1[tp] = max(v1.get(tp, 0), note.size)
        elif note.size >= stated.get(tp, (-1, 0))[0]:
            stated[tp] = (note.size, note.leaf2_from)
    return {**v1, **{tp: start for tp, (_, start) in stated.items()}}


def position(rec: LogRecord) -> str:
    return f"{rec.topic}/{rec.partition}/{rec.offset}"


def proof_fields(
    rec: LogRecord, index: int, size: int, path: list[bytes], leaf2_from: int = 0
) -> dict[str, Any]:
    """An inclusion proof as a third party reads it (`keel audit prove`, review packs): the
    leaf's bytes (in the format its tree holds at `index`), where it sits and the audit path,
    up to the root of a tree of `size`."""
    v2 = index >= leaf2_from
    data = leaf_data(rec) if v2 else leaf_data_v1(rec.topic, rec.partition, rec.offset, rec.value)
    return {
        "position": position(rec),
        "leaf_index": index,
        "tree_size": size,
        "leaf_format": 2 if v2 else 1,
        "leaf_data": base64.b64encode(data).decode(),
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
    return [Put(keys.rejected(position(rec)), doc), SetAdd(REJECTED, (position(rec),))]


def checkpoint_event(
    trees: Mapping[TopicPartition, merkle.Frontier], signer: Signer, code_version: str
) -> g.Checkpoint:
    """One signed note per tree, all with the audit identity's active key, at one time."""
    now = datetime.now(UTC)
    heads = []
    for tp in sorted(trees):
        tree = trees[tp]
        root = tree.root()
        text = cp.body(tp[0], tp[1], tree.size, root, now, tree.leaf2_from, signer.trust.digest())
        note = cp.sign(text, signer)
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
