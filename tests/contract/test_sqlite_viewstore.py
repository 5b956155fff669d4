from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from tests.contract.viewstore_contract import MakeViews, ViewStoreContract


class TestSqliteViewStore(ViewStoreContract):
    @pytest.fixture
    def make_views(self, tmp_path: Path) -> Iterator[MakeViews]:
        opened: list[ViewStore] = []

        def make() -> ViewStore:
            v = SqliteViewStore(tmp_path / "views.db")
            opened.append(v)
            return v

        yield make
        for v in opened:
            v.close()
