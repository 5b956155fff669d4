"""Issue 35: SeaweedFS took ~17 s to stop. In one `weed server` the volume server stopped before
the filer, whose last metadata-log flush then found no volume to write to and retried until its
15 s shutdown budget ran out, dropping that log. The filer (with the S3 gateway) now runs as its
own process and stops first. A real SeaweedFS: stopped, nothing abandoned, data kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.object_store import ObjectStore
from deploy.processes import free_port, port_open

pytestmark = pytest.mark.integration


def test_seaweedfs_stops_in_order_and_keeps_its_data(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "weed", free_port(), secure=False, buckets=())
    log = tmp_path / "weed" / "weed.log"
    store.start(timeout=90)
    try:
        s3 = store._admin_client()
        s3.create_bucket(Bucket="kept")
        s3.put_object(Bucket="kept", Key="a", Body=b"written before the stop")
        mark = log.stat().st_size
    finally:
        store.stop()
    assert store.process.pid() is None and store.filer.pid() is None  # both stopped
    assert not port_open(store.port)
    stopping = log.read_bytes()[mark:].decode(errors="replace")
    assert "Shutting down filer" in stopping
    # the filer's last flush went into the running volume server, not into a 15 s timeout
    assert "flush abandoned" not in stopping and "flush dropped" not in stopping, stopping[-3000:]
    store.start(timeout=90)
    try:
        body = store._admin_client().get_object(Bucket="kept", Key="a")["Body"].read()
        assert body == b"written before the stop"
    finally:
        store.stop()
