from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.log.port import EventLog
from keel.log.sqlite import SqliteEventLog
from tests.contract.eventlog_contract import EventLogContract, MakeLog


class TestSqliteEventLog(EventLogContract):
    @pytest.fixture
    def make_log(self, tmp_path: Path) -> Iterator[MakeLog]:
        opened: list[EventLog] = []

        def make() -> EventLog:
            log = SqliteEventLog(tmp_path / "log.db")
            opened.append(log)
            return log

        yield make
        for log in opened:
            log.close()  # closing twice is allowed by the port
