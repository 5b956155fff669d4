"""`keel audit prove` finds an event by its ID's bytes and decodes only the candidates."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keel.audit import trees as tr
from keel.audit import verify as vf
from keel.codec import Codec
from keel.events import encode_event
from keel.log.port import LogRecord
from keel.schemas.registry import load_registry
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.unit


def test_an_event_is_found_by_its_own_id_not_by_a_mention_of_it() -> None:
    codec = Codec(load_registry())
    evs = [e for i in range(20) for e in events(i)]
    target = evs[7]
    eid = target.envelope.event_id
    # a later event that only mentions the ID (its causation) must not be taken for it
    mention = replace(evs[30], envelope=replace(evs[30].envelope, causation_id=eid))
    evs[30] = mention
    records = [
        LogRecord("t", i % 2, i // 2, "k", 0, encode_event(codec, e)) for i, e in enumerate(evs)
    ]
    records.append(replace(records[7], partition=1, offset=99))  # a duplicate: the first counts
    found = vf.locate(records, eid, codec)
    assert found is not None
    tp, index, rec, leaves = found
    assert (tp, index, rec) == (("t", 1), 3, records[7])
    assert leaves == [tr.leaf(r) for r in records if r.tp == ("t", 1)]
    assert vf.locate(records, "no-such-id", codec) is None
