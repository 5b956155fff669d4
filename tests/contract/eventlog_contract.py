"""The EventLog contract, written once. Each adapter's test module subclasses it and provides
`make_log`: a factory that opens the *same* storage again on every call (for restart tests)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from keel.log.port import EventLog, OutgoingEvent

MakeLog = Callable[[], EventLog]


def ev(topic: str, key: str, ts: int, value: bytes | None = None) -> OutgoingEvent:
    return OutgoingEvent(
        topic, key, ts, value if value is not None else f"{topic}:{key}:{ts}".encode()
    )


@pytest.mark.contract
class EventLogContract:
    def test_append_then_read_in_order(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append([ev("ingest", "a", 1), ev("ingest", "b", 2), ev("registry", "a", 3)])
        assert [r.value for r in stored] == [b"ingest:a:1", b"ingest:b:2", b"registry:a:3"]
        per_topic = [r.offset for r in stored if r.topic == "ingest"]
        assert per_topic == sorted(per_topic)
        read = list(log.read())
        assert [(r.topic, r.key, r.timestamp_ms, r.value) for r in read] == [
            (r.topic, r.key, r.timestamp_ms, r.value) for r in stored
        ]

    def test_empty_append_is_a_no_op(self, make_log: MakeLog) -> None:
        log = make_log()
        assert log.append([]) == []
        assert list(log.read()) == []

    def test_binary_values_are_kept_exactly(self, make_log: MakeLog) -> None:
        log = make_log()
        blob = bytes(range(256)) * 4
        log.append([ev("artifacts", "k", 1, blob), ev("artifacts", "k", 2, b"")])
        assert [r.value for r in log.read(["artifacts"])] == [blob, b""]

    def test_read_by_topic_and_from_offset(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append(
            [ev("ingest", str(i), i) for i in range(10)] + [ev("registry", "x", 99)]
        )
        assert [r.key for r in log.read(["registry"])] == ["x"]
        sixth = stored[5]
        got = list(log.read(["ingest"], {sixth.tp: sixth.offset}))
        assert [r.key for r in got] == [str(i) for i in range(5, 10)]
        assert [r.key for r in log.read(["ingest"], limit=3)] == ["0", "1", "2"]

    def test_read_since_filters_exactly_on_occurred_at(self, make_log: MakeLog) -> None:
        log = make_log()
        # occurred_at need not grow along the log (late or backfilled events)
        log.append([ev("ingest", "a", 100), ev("ingest", "b", 300), ev("ingest", "c", 200)])
        log.append([ev("ingest", "d", 50), ev("deployments", "e", 250)])
        assert [r.key for r in log.read_since(200)] == ["b", "c", "e"]
        assert [r.key for r in log.read_since(200, ["ingest"])] == ["b", "c"]
        assert list(log.read_since(10_000)) == []

    def test_consumer_positions_are_durable_per_group(self, make_log: MakeLog) -> None:
        log = make_log()
        stored = log.append([ev("ingest", "a", 1), ev("ingest", "b", 2)])
        log.commit("projector", {stored[0].tp: stored[0].offset + 1})
        log.commit("other", {stored[1].tp: stored[1].offset + 1})
        log.close()
        again = make_log()
        assert again.committed("projector") == {stored[0].tp: stored[0].offset + 1}
        assert again.committed("other") == {stored[1].tp: stored[1].offset + 1}
        assert again.committed("nobody") == {}

    def test_subscription_resumes_after_the_commit(self, make_log: MakeLog) -> None:
        log = make_log()
        log.append([ev("ingest", str(i), i) for i in range(5)])
        sub = log.subscribe("g", ["ingest"])
        first = sub.poll(timeout=1.0, max_records=3)
        assert [r.key for r in first] == ["0", "1", "2"]
        sub.commit()
        sub.close()
        sub2 = log.subscribe("g", ["ingest"])
        assert [r.key for r in sub2.poll(timeout=1.0)] == ["3", "4"]
        sub2.close()
        # an uncommitted poll is delivered again to the next member of the group
        sub3 = log.subscribe("g", ["ingest"])
        assert [r.key for r in sub3.poll(timeout=1.0)] == ["3", "4"]
        sub3.close()

    def test_subscription_follows_new_events(self, make_log: MakeLog) -> None:
        log = make_log()
        writer = make_log()
        sub = log.subscribe("follower", ["registry"])
        assert sub.poll(timeout=0.1) == []

        def later() -> None:
            time.sleep(0.2)
            writer.append([ev("registry", "late", 7), ev("ingest", "ignored", 8)])

        t = threading.Thread(target=later)
        t.start()
        got: list[str] = []
        deadline = time.monotonic() + 10
        while not got and time.monotonic() < deadline:
            got = [r.key for r in sub.poll(timeout=0.5)]
        t.join()
        assert got == ["late"]
        sub.close()

    def test_appends_survive_reopen(self, make_log: MakeLog) -> None:
        log = make_log()
        log.append([ev("training", "m", i) for i in range(100)])
        log.close()
        assert len(list(make_log().read(["training"]))) == 100
