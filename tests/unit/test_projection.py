"""The pure projection fold and the pure chain check, without any store."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from keel.audit.chain import GENESIS, link_hash, source_of, verify_chain
from keel.audit.projection import STATS, evolve, keys_for
from keel.views.port import IndexAdd
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit


def fold(events: list[Any]) -> tuple[dict[str, Any], list[IndexAdd]]:
    docs: dict[str, Any] = {}
    index: list[IndexAdd] = []
    for e in events:
        view = {k: docs.get(k) for k in keys_for(e)}
        change = evolve(view, e)
        docs.update(change.docs)
        index.extend(change.index)
    return docs, index


def test_deployments_become_serving_index_entries_and_documents() -> None:
    a = make_deployed("A", at=datetime(2025, 1, 1, tzinfo=UTC))
    b = make_deployed("B", at=datetime(2025, 3, 1, tzinfo=UTC), env="staging")
    docs, index = fold([a, b])
    assert docs[STATS]["applied"] == 2 and docs[STATS]["by_type"] == {"ModelDeployed": 2}
    assert docs["meta:families"] == {"families": ["fam"]}
    assert {(i.index, i.member) for i in index} == {
        ("serving:fam:prod", a.envelope.event_id),
        ("serving:fam:staging", b.envelope.event_id),
    }
    assert docs[f"deployment:{a.envelope.event_id}"]["model_id"] == "A"


def test_evolve_does_not_modify_its_input() -> None:
    e = make_deployed("A")
    view = {k: None for k in keys_for(e)}
    stats = {"applied": 5, "by_type": {"X": 5}}
    view[STATS] = stats
    evolve(view, e)
    assert stats == {"applied": 5, "by_type": {"X": 5}}


def link(seq: int, prev: str, data: bytes, eid: str) -> SimpleNamespace:
    import hashlib

    sha = hashlib.sha256(data).hexdigest()
    src = source_of("t", 0, seq)
    h = link_hash(seq, prev, sha, eid, src, f"s{seq}")
    return SimpleNamespace(
        seq=seq,
        prev_hash=prev,
        hash=h,
        event_id=eid,
        source_topic="t",
        source_partition=0,
        source_offset=seq,
        event_sha256=sha,
        summary=f"s{seq}",
    )


def chain_of(n: int) -> tuple[list[SimpleNamespace], dict[str, tuple[bytes, str]]]:
    links, prev, sources = [], GENESIS, {}
    for i in range(1, n + 1):
        lk = link(i, prev, f"event {i}".encode(), f"e{i}")
        links.append(lk)
        sources[source_of("t", 0, i)] = (f"event {i}".encode(), f"e{i}")
        prev = lk.hash
    return links, sources


def test_chain_verification_names_the_first_break() -> None:
    links, sources = chain_of(6)
    assert verify_chain(links, sources) == (6, None)
    swapped = [*links[:2], links[3], links[2], *links[4:]]
    assert verify_chain(swapped, sources)[1].kind == "reordered"  # type: ignore[union-attr]
    assert verify_chain([*links[:3], *links[4:]], sources)[1].kind == "missing"  # type: ignore[union-attr]
    assert verify_chain([*links, links[2]], sources)[1].kind == "inserted"  # type: ignore[union-attr]
    edited = dict(sources)
    edited[source_of("t", 0, 4)] = (b"forged", "e4")
    brk = verify_chain(links, edited)[1]
    assert brk is not None and (brk.kind, brk.position) == ("tampered", 4)
