"""The EventLog contract, written once. Each adapter's test module subclasses it and provides
`make_log`: a factory that opens the *same* storage again on every call (for restart tests).

Order is promised per (topic, partition) only, as Kafka promises it; events that share a key
share a partition, so tests that need one order use one key.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from keel.log.port import EventLog, LogRecord, OutgoingEvent, Subscription

MakeLog = Callable[[], EventLog]


def ev(topic: str, key: str, ts: int, value: bytes | None = None) -> OutgoingEvent:
    # ts > 0: Kafka producers read a zero timestamp as "now"
    return OutgoingEvent(
        topic, key, ts, value if value is not None else f"{topic}:{key}:{ts}".encode()
    )


def poll_until(
    sub: Subscription, n: int, seconds: float = 30.0, max_records: int = 1000
) -> list[LogRecord]:
    """Poll until n records came (a Kafka group needs a moment to join), bounded in time."""
    got: list[LogRecord] = []
    deadline = time.monotonic() + seconds
    while len(got) < n and time.monotonic() < deadline:
        got += sub.poll(timeout=0.5, max_records=max_records - len(got) if max_records else 1000)
    return got


def facts(records: list[LogRecord]) -> list[tuple[str, str, int, bytes]]:
    return sorted((r.topic, r.key, r.timestamp_ms, r.value) for r in records)


@pytest.mark.contract
class EventLogContract:
    def test_append_then_read_back_everything(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append([ev("ingest", "a", 1), ev("ingest", "b", 2), ev("registry", "a", 3)])
        assert [r.value for r in stored] == [b"ingest:a:1", b"ingest:b:2", b"registry:a:3"]
        read = list(log.read())
        assert facts(read) == facts(stored)
        assert {(r.topic, r.partition, r.offset) for r in read} == {
            (r.topic, r.partition, r.offset) for r in stored
        }

    def test_order_is_kept_per_key(self, make_log: MakeLog) -> None:
        log = make_log()
        log.append([ev("ingest", "agg", i) for i in range(1, 21)] + [ev("ingest", "other", 99)])
        log.append([ev("ingest", "agg", i) for i in range(21, 31)])
        assert [r.timestamp_ms for r in log.read(["ingest"]) if r.key == "agg"] == list(
            range(1, 31)
        )

    def test_empty_append_is_a_no_op(self, make_log: MakeLog) -> None:
        log = make_log()
        assert log.append([]) == []
        assert list(log.read()) == []

    def test_binary_values_are_kept_exactly(self, make_log: MakeLog) -> None:
        log = make_log()
        blob = bytes(range(256)) * 4
        log.append([ev("artifacts", "k", 1, blob), ev("artifacts", "k", 2, b"")])
        assert [r.value for r in log.read(["artifacts"])] == [blob, b""]

    def test_signature_records_are_kept_beside_the_value(self, make_log: MakeLog) -> None:
        log = make_log()
        sig = b"KS1" + bytes(range(200))
        signed = OutgoingEvent("registry", "k", 1, b"v1", sig)
        stored = log.append([signed, ev("registry", "k", 2)])
        assert [r.sig for r in stored] == [sig, None]
        assert [(r.value, r.sig) for r in log.read(["registry"])] == [
            (b"v1", sig),
            (b"registry:k:2", None),
        ]
        sub = log.subscribe("sig-readers", ["registry"])
        try:
            assert [r.sig for r in poll_until(sub, 2)] == [sig, None]
        finally:
            sub.close()

    def test_read_by_topic_and_from_offset(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append(
            [ev("ingest", "k", i) for i in range(1, 11)] + [ev("registry", "x", 99)]
        )
        assert [r.key for r in log.read(["registry"])] == ["x"]
        sixth = stored[5]
        got = list(log.read(["ingest"], {sixth.tp: sixth.offset}))
        assert [r.timestamp_ms for r in got] == list(range(6, 11))
        assert [r.timestamp_ms for r in log.read(["ingest"], limit=3)] == [1, 2, 3]

    def test_end_offsets_say_where_the_next_append_goes(self, make_log: MakeLog) -> None:
        log = make_log()
        assert log.end_offsets(["ingest", "registry"]) == {}
        stored = log.append([ev("ingest", "k", 1), ev("ingest", "k", 2), ev("registry", "x", 3)])
        ends = log.end_offsets(["ingest", "registry", "deployments"])
        assert set(ends) == {stored[0].tp, stored[2].tp}
        for r in stored:
            assert ends[r.tp] > r.offset
        # reading from the ends finds nothing; one more append lands at or past them
        assert list(log.read(["ingest", "registry"], ends)) == []
        more = log.append([ev("ingest", "k", 4)])
        assert more[0].offset >= ends[more[0].tp]
        after = list(log.read(["ingest", "registry"], ends))
        assert [r.timestamp_ms for r in after] == [4]

    def test_reading_from_positions_across_topics_returns_only_unread(
        self, make_log: MakeLog
    ) -> None:
        log = make_log()
        first = log.append([ev("features", "f", 1)])
        busy = log.append([ev("ingest", "k", i) for i in range(2, 40)])
        positions = {first[0].tp: first[0].offset + 1, busy[-1].tp: busy[-1].offset + 1}
        positions = {tp: max(o, positions.get(tp, 0)) for tp, o in positions.items()}
        for r in busy:  # every partition of ingest, caught up
            positions[r.tp] = max(positions.get(r.tp, 0), r.offset + 1)
        assert list(log.read(["features", "ingest"], positions)) == []
        new = log.append([ev("features", "f", 50)])
        got = list(log.read(["features", "ingest"], positions))
        assert [(r.topic, r.timestamp_ms) for r in got] == [(new[0].topic, 50)]

    def test_the_log_stamps_recorded_time_whatever_the_writer_says(self, make_log: MakeLog) -> None:
        log = make_log()
        before = time.time_ns() // 1_000_000
        # the writer claims a business time in 1970 and another in 2100
        stored = log.append([ev("ingest", "k", 5), ev("ingest", "k", 4_102_444_800_000)])
        after = time.time_ns() // 1_000_000
        read = list(log.read(["ingest"]))
        for rec in [*stored, *read]:
            assert before - 5_000 <= rec.recorded_ms <= after + 5_000, rec
        assert [r.recorded_ms for r in read] == sorted(r.recorded_ms for r in read)
        assert [r.timestamp_ms for r in stored] == [5, 4_102_444_800_000]  # business time kept

    def test_consumer_positions_are_durable_per_group(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append([ev("ingest", "a", 1), ev("ingest", "a", 2)])
        log.commit("projector", {stored[0].tp: stored[0].offset + 1})
        log.commit("other", {stored[1].tp: stored[1].offset + 1})
        log.close()
        again = make_log()
        assert again.committed("projector") == {stored[0].tp: stored[0].offset + 1}
        assert again.committed("other") == {stored[1].tp: stored[1].offset + 1}
        assert again.committed("nobody") == {}

    def test_subscription_resumes_after_the_commit(self, make_log: MakeLog) -> None:
        log = make_log()
        log.append([ev("ingest", "k", i) for i in range(1, 6)])
        sub = log.subscribe("g", ["ingest"])
        first = poll_until(sub, 3, max_records=3)
        assert [r.timestamp_ms for r in first] == [1, 2, 3]
        sub.commit()
        sub.close()
        sub2 = log.subscribe("g", ["ingest"])
        assert [r.timestamp_ms for r in poll_until(sub2, 2)] == [4, 5]
        sub2.close()
        # an uncommitted poll is delivered again to the next member of the group
        sub3 = log.subscribe("g", ["ingest"])
        assert [r.timestamp_ms for r in poll_until(sub3, 2)] == [4, 5]
        sub3.close()

    def test_subscription_follows_new_events(self, make_log: MakeLog) -> None:
        log = make_log()
        writer = make_log()
        sub = log.subscribe("follower", ["registry"])
        assert sub.poll(timeout=0.1) == []

        def later() -> None:
            time.sleep(0.5)
            writer.append([ev("registry", "late", 7), ev("ingest", "ignored", 8)])

        t = threading.Thread(target=later)
        t.start()
        got = [r.key for r in poll_until(sub, 1)]
        t.join()
        assert got == ["late"]
        sub.close()

    def test_appends_survive_reopen(self, make_log: MakeLog) -> None:
        log = make_log()
        log.append([ev("training", "m", i) for i in range(100)])
        log.close()
        assert len(list(make_log().read(["training"]))) == 100
