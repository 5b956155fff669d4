"""Real-broker faults: unreachable at start; SIGKILL and restart while a producer publishes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from deploy.kafka_broker import Kafka
from deploy.processes import free_port
from keel.errors import KeelError
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import OutgoingEvent

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_unreachable_broker_is_a_clear_error_naming_the_address() -> None:
    port = free_port()  # nothing listens here
    code = f"from keel.log.kafka import KafkaEventLog\nKafkaEventLog('127.0.0.1:{port}')\n"
    # A hang would hit the subprocess timeout and fail the test; no wall-clock threshold here.
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert f"Kafka at 127.0.0.1:{port} is unreachable" in out.stderr
    with pytest.raises(KeelError) as info:
        KafkaEventLog(f"127.0.0.1:{port}")
    assert "make up" in info.value.hint


def test_acknowledged_events_survive_a_broker_sigkill_exactly_once(tmp_path: Path) -> None:
    broker = Kafka(tmp_path / "kafka", free_port(), free_port()).start()
    try:
        log = KafkaEventLog(broker.bootstrap, prefix=new_prefix())
        acked: list[str] = []
        failed: list[str] = []
        stop = threading.Event()

        def publish() -> None:
            i = 0
            while not stop.is_set() and i < 4000:  # bounded in count
                batch = [f"e{i + j}" for j in range(20)]
                try:
                    log.append(
                        [
                            OutgoingEvent(
                                "ingest", f"k{(i + j) % 7}", 1_700_000_000_000 + i + j, e.encode()
                            )
                            for j, e in enumerate(batch)
                        ]
                    )
                    acked.extend(batch)
                except KeelError:
                    failed.extend(batch)
                i += 20

        t = threading.Thread(target=publish)
        t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        broker.process.kill()  # SIGKILL mid-stream
        time.sleep(1.0)
        broker.start()
        t.join(timeout=180)
        stop.set()
        assert not t.is_alive()
        assert len(acked) > 500
        records = list(log.read(["ingest"]))
        values = [r.value.decode() for r in records]
        counts: dict[str, int] = {}
        for v in values:
            counts[v] = counts.get(v, 0) + 1
        missing = [e for e in acked if counts.get(e, 0) == 0]
        doubled = [e for e in acked if counts.get(e, 0) > 1]
        where = [
            (r.partition, r.offset, r.value.decode())
            for r in records
            if r.value.decode() in doubled
        ]
        assert missing == [] and doubled == [], (
            len(missing),
            len(doubled),
            len(failed),
            where[:10],
        )
        log.close()
    finally:
        broker.stop()
