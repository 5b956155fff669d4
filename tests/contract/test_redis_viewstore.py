"""The ViewStore contract on a real redis-server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from keel.views.port import ViewStore
from keel.views.redis import RedisViewStore
from tests.contract.viewstore_contract import MakeViews, ViewStoreContract

pytestmark = pytest.mark.integration


class TestRedisViewStore(ViewStoreContract):
    @pytest.fixture
    def make_views(self, redis_url: str) -> Iterator[MakeViews]:
        ns = f"t{uuid.uuid4().hex[:10]}:"  # a private keyspace per test
        opened: list[ViewStore] = []

        def make() -> ViewStore:
            v = RedisViewStore(redis_url, namespace=ns)
            opened.append(v)
            return v

        yield make
        opened[0].clear()
        for v in opened:
            v.close()
