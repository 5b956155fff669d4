"""Single-object encoding: exact header, round trips, resolution, typed errors."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from fastavro.schema import fingerprint
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.codec import (
    MAGIC,
    Codec,
    CodecError,
    CorruptBody,
    NotSingleObject,
    Truncated,
    UnknownSchema,
)
from keel.events import decode_event, encode_event
from keel.schemas.registry import SchemaRegistry, load_registry
from tests.conftest import make_deployed

pytestmark = pytest.mark.unit


def test_crc64_avro_fingerprint_is_little_endian_per_spec() -> None:
    # Avro spec test vector: the Rabin fingerprint of "null" is 7195948357588979594.
    assert bytes.fromhex(fingerprint('"null"', "CRC-64-AVRO")) == (7195948357588979594).to_bytes(
        8, "little"
    )


def test_header_is_c301_then_fingerprint(codec: Codec, registry: SchemaRegistry) -> None:
    data = encode_event(codec, make_deployed())
    assert data[:2] == MAGIC == b"\xc3\x01"
    assert data[2:10] == registry.latest("ModelDeployed").fingerprint


def test_round_trip_keeps_every_field(codec: Codec) -> None:
    event = make_deployed()
    assert decode_event(codec, encode_event(codec, event)) == event


@settings(max_examples=200, deadline=None)
@given(
    model_id=st.text(max_size=80),
    env=st.text(min_size=1, max_size=20),
    millis=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_round_trip_property(codec: Codec, model_id: str, env: str, millis: int) -> None:
    from datetime import UTC, datetime, timedelta

    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    event = make_deployed(model_id=model_id, env=env, at=at)
    assert decode_event(codec, encode_event(codec, event)) == event


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_never_escape_as_untyped_errors(codec: Codec, junk: bytes) -> None:
    with contextlib.suppress(CodecError):
        codec.decode(junk)


def test_every_truncation_is_a_typed_error(codec: Codec) -> None:
    data = encode_event(codec, make_deployed())
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            codec.decode(data[:cut])


def test_typed_errors_name_the_problem(codec: Codec) -> None:
    data = encode_event(codec, make_deployed())
    with pytest.raises(NotSingleObject, match="not Avro single-object"):
        codec.decode(b"{json: 1}" + data)
    with pytest.raises(Truncated):
        codec.decode(data[:6])
    unknown = MAGIC + b"\x01" * 8 + data[10:]
    with pytest.raises(UnknownSchema) as info:
        codec.decode(unknown)
    assert info.value.fingerprint == "0101010101010101"
    assert "UnknownSchema(fingerprint=0101010101010101)" in str(info.value)
    with pytest.raises(CorruptBody, match="trailing"):
        codec.decode(data + b"\x00")


def _write_versions(root: Path, versions: list[dict[str, object]]) -> None:
    events = root / "events"
    events.mkdir(parents=True)
    for i, schema in enumerate(versions, start=1):
        (events / f"thing_happened.v{i}.avsc").write_text(json.dumps(schema))


def test_old_events_are_read_with_the_latest_schema(tmp_path: Path) -> None:
    v1 = {"type": "record", "name": "ThingHappened", "fields": [{"name": "a", "type": "long"}]}
    v2 = {
        "type": "record",
        "name": "ThingHappened",
        "fields": [
            {"name": "a", "type": "long"},
            {"name": "note", "type": "string", "default": "none"},
        ],
    }
    _write_versions(tmp_path, [v1, v2])
    registry = load_registry(tmp_path)
    codec = Codec(registry)
    old_bytes = codec.encode_with(registry.history("ThingHappened")[0], {"a": 7})
    assert codec.decode(old_bytes) == ("ThingHappened", {"a": 7, "note": "none"})
