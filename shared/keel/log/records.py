"""LogRecords built for the readers' hot loops.

A reader builds one LogRecord per record it reads (1M in a rebuild). The frozen dataclass's
generated `__init__` sets each field through `object.__setattr__`, looked up again per field;
setting the slots through their descriptors, bound once here, builds the same record in about
two thirds of the time (decision 0030). tests/unit/test_log_records.py keeps the two equal, field
for field, should LogRecord change.
"""

from __future__ import annotations

from dataclasses import fields

from keel.log.port import LogRecord

FIELDS = tuple(f.name for f in fields(LogRecord))
(
    _topic,
    _partition,
    _offset,
    _key,
    _timestamp_ms,
    _value,
    _sig,
    _recorded_ms,
) = (getattr(LogRecord, name).__set__ for name in FIELDS)
_new = object.__new__


def record(
    topic: str,
    partition: int,
    offset: int,
    key: str,
    timestamp_ms: int,
    value: bytes,
    sig: bytes | None,
    recorded_ms: int,
) -> LogRecord:
    """LogRecord(topic, partition, ...), every field given (no defaults: they cost a lookup)."""
    r = _new(LogRecord)
    _topic(r, topic)
    _partition(r, partition)
    _offset(r, offset)
    _key(r, key)
    _timestamp_ms(r, timestamp_ms)
    _value(r, value)
    _sig(r, sig)
    _recorded_ms(r, recorded_ms)
    return r
