"""The audit chain: every folded event, in one total order, each link hashing the previous one.
Pure functions; the projector appends links, `verify` re-walks them against the source events."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def link_hash(
    seq: int, prev: str, event_sha256: str, event_id: str, source: str, summary: str
) -> str:
    text = f"{seq}\n{prev}\n{event_sha256}\n{event_id}\n{source}\n{summary}"
    return hashlib.sha256(text.encode()).hexdigest()


def source_of(topic: str, partition: int, offset: int) -> str:
    return f"{topic}/{partition}/{offset}"


@dataclass(frozen=True)
class Break:
    position: int  # chain seq (1-based) where the first problem is, 0 = outside the chain
    kind: str  # tampered | missing | reordered | inserted
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "kind": self.kind, "detail": self.detail}


def verify_chain(
    links: Iterable[Any], sources: Mapping[str, tuple[bytes, str]]
) -> tuple[int, Break | None]:
    """(links checked, first break). `links` are AuditRecord events in chain order; `sources`
    maps "topic/partition/offset" to (stored bytes, event_id) for every source event."""
    prev, expected_seq, seen = GENESIS, 1, set()
    chain = list(links)
    seqs = [link.seq for link in chain]
    n = 0
    for i, link in enumerate(chain):
        n += 1
        src = source_of(link.source_topic, link.source_partition, link.source_offset)
        if link.seq != expected_seq:
            if expected_seq in seqs[i + 1 :]:
                kind = "reordered"  # the link that belongs here comes later
            elif link.seq < expected_seq:
                kind = "inserted"  # a position that was already filled, seen again
            else:
                kind = "missing"  # the link that belongs here is nowhere
            return n, Break(
                expected_seq, kind, f"link {n} has seq {link.seq}, expected {expected_seq}"
            )
        if link.prev_hash != prev:
            return n, Break(
                link.seq, "reordered", f"link {link.seq} does not follow link {link.seq - 1}"
            )
        recomputed = link_hash(
            link.seq, link.prev_hash, link.event_sha256, link.event_id, src, link.summary
        )
        if recomputed != link.hash:
            return n, Break(
                link.seq, "tampered", f"link {link.seq} was edited (its hash does not match)"
            )
        stored = sources.get(src)
        if stored is None:
            return n, Break(
                link.seq, "missing", f"event {link.event_id} at {src} is gone from the log"
            )
        data, event_id = stored
        if hashlib.sha256(data).hexdigest() != link.event_sha256 or event_id != link.event_id:
            return n, Break(link.seq, "tampered", f"event {link.event_id} at {src} was altered")
        if link.event_id in seen:
            return n, Break(link.seq, "inserted", f"event {link.event_id} is chained twice")
        seen.add(link.event_id)
        prev, expected_seq = link.hash, expected_seq + 1
    unchained = [src for src, (_, eid) in sources.items() if eid not in seen]
    if unchained:
        return n, Break(
            0,
            "inserted",
            f"{len(unchained)} event(s) in the log are not in the chain, e.g. {unchained[0]}",
        )
    return n, None
