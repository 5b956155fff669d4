"""The EventLog contract on a real Apache Kafka broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keel.log.kafka import KafkaEventLog, new_prefix
from keel.log.port import EventLog
from tests.contract.eventlog_contract import EventLogContract, MakeLog

pytestmark = pytest.mark.integration


class TestKafkaEventLog(EventLogContract):
    @pytest.fixture
    def make_log(self, kafka_bootstrap: str) -> Iterator[MakeLog]:
        prefix = new_prefix()  # a private set of topics and groups per test
        opened: list[EventLog] = []

        def make() -> EventLog:
            log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
            opened.append(log)
            return log

        yield make
        for log in opened:
            log.close()
