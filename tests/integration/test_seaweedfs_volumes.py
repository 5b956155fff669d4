"""CI at stop 43 failed with `InternalError` on S3 writes: SeaweedFS's log said "No writable
volumes and no free volumes left". The volume server ran with `-volume.max=0`, which sizes the
number of volumes from the free disk (one per `volumeSizeLimitMB`, then 1 GiB), and every bucket is
a collection that takes 7 volumes when first written. Three test processes, each with its own
store, on a disk with ~21 GiB free had room for three buckets each. A store must take as many
buckets as its users make, whatever the disk's free space (volumes are sparse files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.object_store import ObjectStore
from deploy.processes import free_port

pytestmark = pytest.mark.integration

BUCKETS = 12  # 84 volumes at 7 a collection: past the free-disk count on any machine here


def test_a_store_takes_a_write_in_each_of_many_buckets(tmp_path: Path) -> None:
    store = ObjectStore(tmp_path / "weed", free_port(), secure=False, buckets=())
    store.start(timeout=90)
    try:
        s3 = store._admin_client()
        for i in range(BUCKETS):
            s3.create_bucket(Bucket=f"bucket-{i}")
            s3.put_object(Bucket=f"bucket-{i}", Key="k", Body=b"x" * (i + 1))
        for i in range(BUCKETS):
            assert s3.get_object(Bucket=f"bucket-{i}", Key="k")["Body"].read() == b"x" * (i + 1)
    finally:
        store.stop()
