"""The in-memory views a rebuild folds into (keel.views.memory, decision 0034) pass the same
contract as the stored ones: held wholly in memory, and past a (tiny) budget spilled after every
batch into a SQLite `building` file, reads then looking in memory first and in the file next."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.views.memory import MemoryViewStore
from keel.views.sqlite import SqliteViewStore
from tests.contract.viewstore_contract import MakeViews, ViewStoreContract


class TestMemoryViewStore(ViewStoreContract):
    @pytest.fixture
    def make_views(self) -> Iterator[MakeViews]:
        store = MemoryViewStore()  # "opened again": the same views, as a process would hold
        yield lambda: store


class TestSpillingMemoryViewStore(ViewStoreContract):
    @pytest.fixture
    def make_views(self, tmp_path: Path) -> Iterator[MakeViews]:
        made: list[SqliteViewStore] = []

        def spill() -> SqliteViewStore:
            made.append(SqliteViewStore(tmp_path / "spill.db", building=True))
            return made[-1]

        store = MemoryViewStore(budget=1, spill=spill)  # every batch past it: spilled
        yield lambda: store
        assert store.spills > 0 and made  # the path under test was taken
        for s in made:
            s.close()
