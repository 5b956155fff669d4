"""With a projector service running on Kafka + Redis, only it publishes the views and signs
checkpoints: commands that fold inline (`keel audit project`, `keel audit verify`) and the
audit API's replica watcher must not take its transactional ID (issue 35: "another writer with
this one's identity (keel-<prefix>projector-audit) took over" and the service exited).
Commands see the service's lease in the views and wait for it instead of folding."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.audit.freshness import FreshViews
from keel.signing import Signer
from keel.views.sqlite import SqliteViewStore
from tests.e2e.test_projector_service import CODEC, OnKafka, _wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.faults]
LEASE = "projector:audit:lease"  # keel.audit.lease.lease_key("audit")


@pytest.fixture
def stack(tmp_path: Path, kafka_bootstrap: str, redis_url: str) -> Iterator[OnKafka]:
    home = tmp_path / "home"
    home.mkdir()
    k = OnKafka(home, kafka_bootstrap, redis_url)
    yield k
    k.close()


def _alive_after_appends(k: OnKafka, proc: object, lo: int, hi: int, expect: int) -> None:
    """Events appended after the command: the service folds and checkpoints them (a fenced
    service would exit at its next checkpoint append)."""
    for start in range(lo, hi, 50):  # several batches: every partition gets a checkpoint try
        k.append(start, min(hi, start + 50))
    _wait_for(expect, k.views, proc)  # type: ignore[arg-type]
    assert proc.poll() is None  # type: ignore[attr-defined]


def test_commands_folding_inline_leave_the_projector_service_running(
    stack: OnKafka, tmp_path: Path
) -> None:
    k = stack
    k.append(0, 100)
    proc = k.start()
    _wait_for(200 + k.base, k.views, proc)

    k.append(100, 150)
    done = k.keel("audit", "project", "--json")
    assert done.returncode == 0, done.stderr
    _alive_after_appends(k, proc, 150, 300, 600 + k.base)
    doc = json.loads(done.stdout)
    assert doc["applied"] == 0 and doc["folded_by"]  # the service folded them, not the command
    assert doc["total_applied"] >= 300 + k.base  # and the command waited for it
    assert (k.views.get(LEASE) or {}).get("holder")  # the service holds the lease

    verify = k.keel("audit", "verify", "--json", "--skip", "artifacts")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    _alive_after_appends(k, proc, 300, 400, 800 + k.base)

    # the audit API's replica watcher folds with the public keys only: never the writer's ID
    replica = SqliteViewStore(tmp_path / "replica.db")
    FreshViews(k.log, replica, CODEC, Signer(k.signer.trust)).check()
    assert (replica.get("projector:stats") or {}).get("applied") == 800 + k.base
    _alive_after_appends(k, proc, 400, 500, 1000 + k.base)

    _out, err = k.stop(proc)
    assert "took over" not in err
    assert k.views.get(LEASE) is None  # released on a clean stop
    k.assert_verified(1000)


def test_a_lapsed_lease_lets_commands_fold_again(stack: OnKafka) -> None:
    """A service killed without releasing its lease: commands wait for it only until the lease
    lapses, then fold (and checkpoint) themselves."""
    k = stack
    k.append(0, 50)
    proc = k.start()
    _wait_for(100 + k.base, k.views, proc)
    proc.kill()
    proc.wait()
    k.append(50, 100)
    done = k.keel("audit", "project", "--json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["applied"] == 100 and not doc["folded_by"], doc
    k.assert_verified(200)
