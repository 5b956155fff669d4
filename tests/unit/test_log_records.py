"""keel.log.records.record builds the LogRecord the dataclass builds, field for field."""

from __future__ import annotations

from dataclasses import fields

import pytest

from keel.log.port import LogRecord
from keel.log.records import FIELDS, record

pytestmark = pytest.mark.unit


def test_record_sets_every_field_of_log_record() -> None:
    # the builder unpacks eight setters: a field added to LogRecord fails its import, and
    # must be added to it
    assert tuple(f.name for f in fields(LogRecord)) == FIELDS
    assert len(FIELDS) == 8


@pytest.mark.parametrize(
    "args",
    [
        ("ingest", 0, 7, "k", 1704067200000, b"\xc3\x01v", b"KS1sig", 1704067200123),
        ("training", 3, 0, "", 0, b"", None, 0),
    ],
)
def test_record_equals_the_dataclass(args: tuple) -> None:  # type: ignore[type-arg]
    built, plain = record(*args), LogRecord(*args)
    assert type(built) is LogRecord
    assert built == plain and hash(built) == hash(plain) and repr(built) == repr(plain)
    assert built.tp == plain.tp
    with pytest.raises(AttributeError):
        built.offset = 1  # type: ignore[misc]  # still frozen
