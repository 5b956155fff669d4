"""The hand-written AuditRecord writer must produce exactly the codec's bytes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.audit.links import LinkEncoder, link_id
from keel.codec import Codec
from keel.events import decode_event
from keel.events import generated as g
from keel.schemas.registry import load_registry

pytestmark = pytest.mark.unit
CODEC = Codec(load_registry())
ENC = LinkEncoder(CODEC, "code-v1")
text = st.text(max_size=300)


def test_the_fast_writer_is_active_for_the_released_schema() -> None:
    # If this fails, the AuditRecord schema changed: links still encode correctly (through the
    # codec), but the fold lost its fast path; update `_encode` for the new schema.
    assert ENC.fast


@settings(max_examples=300, deadline=None)
@given(
    h=st.text("0123456789abcdef", min_size=64, max_size=64),
    at=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    ),
    corr=text,
    seq=st.integers(1, 2**62),
    prev=text,
    event_id=text,
    sha=text,
    summary=text,
    etype=text,
    topic=text,
    part=st.integers(0, 2**31 - 1),
    offset=st.integers(0, 2**62),
)
def test_fast_writer_equals_the_codec(
    h: str,
    at: datetime,
    corr: str,
    seq: int,
    prev: str,
    event_id: str,
    sha: str,
    summary: str,
    etype: str,
    topic: str,
    part: int,
    offset: int,
) -> None:
    r = ENC._record(h, at, corr, seq, prev, event_id, sha, summary)
    r.update(event_type=etype, source_topic=topic, source_partition=part, source_offset=offset)
    fast = ENC._encode(r)
    assert fast == CODEC.encode("AuditRecord", r)
    link = decode_event(CODEC, fast)
    assert isinstance(link, g.AuditRecord) and link.summary == summary and link.seq == seq
    assert link.envelope.occurred_at == at - timedelta(microseconds=at.microsecond % 1000)


def test_link_ids_look_like_uuids_and_follow_the_hash() -> None:
    import uuid

    h = "f" * 64
    assert uuid.UUID(link_id(h)).version == 5 and link_id(h) == link_id(h)
    assert link_id(h) != link_id("e" + h[1:])
