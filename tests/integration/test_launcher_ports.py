"""The launcher's servers start even when a port chosen for them is taken before they bind it
(free ports are only free when chosen; on a busy CI machine another process can take one)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from deploy import object_store, processes

pytestmark = pytest.mark.integration


def test_seaweedfs_starts_again_when_an_internal_port_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    handed: list[int] = []
    real = processes.free_port

    def first_one_busy() -> int:
        port = busy if not handed else real()
        handed.append(port)
        return port

    monkeypatch.setattr(object_store, "free_port", first_one_busy)
    store = object_store.ObjectStore(tmp_path / "weed", real(), secure=False, buckets=())
    try:
        store.start(timeout=60)
        assert processes.port_open(store.port)
        # 6 ports, chosen twice (+ the filer pair)
        assert handed.count(busy) == 1 and len(handed) == 12
        assert "address already in use" in (tmp_path / "weed" / "weed.log").read_text()
    finally:
        store.stop()
        taken.close()
