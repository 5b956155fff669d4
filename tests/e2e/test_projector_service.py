"""The audit projector as a long-running service (`keel service run projector`) on Kafka +
Redis: it catches up, folds events appended while it runs, commits its consumer group only
behind its views, stops cleanly on SIGTERM, and a restart neither re-applies nor misses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.audit.anchors import NOTES
from keel.audit.projector import Projector
from keel.bootstrap import sign_all, to_outgoing
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.signing import Signer, load_private, load_trust
from keel.views.redis import RedisViewStore
from tests.faults.test_projector_kill import events, signed_project

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
KEEL = str(Path(sys.executable).with_name("keel"))
CODEC = Codec(load_registry())


def _append(log: Any, lo: int, hi: int, signer: Signer | None = None) -> None:
    """The events of steps lo..hi-1 (two per step: an artifact and a deployment)."""
    batch = [e for i in range(lo, hi) for e in events(i)]
    if signer is None:
        log.append([to_outgoing(CODEC, e) for e in batch])
    else:
        log.append(sign_all(signer, CODEC, batch))


def embedded_service(home: Path) -> subprocess.Popen[str]:
    """`keel service run projector` on the embedded home `home` (no other KEEL_ setting),
    stopping once idle for 3 s; its output piped."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    return subprocess.Popen(
        [KEEL, "service", "run", "projector", "--max-idle", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(applied: int, views: Any, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (views.get("projector:stats") or {}).get("applied") == applied:
            return
        time.sleep(0.2)
    proc.terminate()
    pytest.fail(f"projector did not reach {applied} events: {proc.communicate(timeout=30)}")


class OnKafka:
    """A fresh topic prefix and Redis namespace, the env that points `keel` at them, and the
    projector processes started in it (killed at the end if still running)."""

    def __init__(self, home: Path, kafka: str, redis_url: str) -> None:
        prefix = new_prefix()
        self.ns = prefix.replace(".", ":")
        self.redis_url = redis_url
        self.log = KafkaEventLog(kafka, prefix=prefix)
        self.views = RedisViewStore(redis_url, namespace=self.ns)
        trust = home.with_name(home.name + "-trust")  # keys outside the home
        trust.mkdir()
        _, keys_env = signed_project(trust)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        self.env.update(
            KEEL_HOME=str(home),
            KEEL_BUS=f"kafka://{kafka}?prefix={prefix}",
            KEEL_VIEWS=f"{redis_url}?namespace={self.ns}",
            KEEL_ADMIN_DIR=str(trust / "admin"),  # never in the home (decision 0022)
            **keys_env,
        )
        self.procs: list[subprocess.Popen[str]] = []
        # the keyring in the trail, signed by the admin key, as `keel keys create` records it
        out = self.keel("keys", "record", "--reason", "test keys")
        assert out.returncode == 0, out.stderr
        self.base = len(list(self.log.read(["keyring"])))  # folded before the test's events
        self.signer = Signer(
            load_trust(trust / "keys.toml", trust / "keel.toml"), load_private(trust / "private")
        )

    def append(self, lo: int, hi: int) -> None:
        _append(self.log, lo, hi, self.signer)

    def start(self) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [KEEL, "service", "run", "projector"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        return proc

    def keel(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KEEL, *args], env=self.env, capture_output=True, text=True)

    def stop(self, proc: subprocess.Popen[str]) -> tuple[str, str]:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        return out, err

    def assert_verified(self, n: int) -> None:
        # the synthetic events announce artifacts no store holds: the catalog is left out
        verify = self.keel("audit", "verify", "--json", "--skip", "artifacts")
        assert verify.returncode == 0, verify.stdout + verify.stderr
        report = json.loads(verify.stdout)
        assert report["events"] == report["signed"] == n + self.base
        assert not report["trees"]["uncovered"]  # the service's checkpoints cover every event

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        self.views.clear()
        self.log.close()


@pytest.fixture
def on_kafka(tmp_path: Path, kafka_bootstrap: str, redis_url: str) -> Iterator[OnKafka]:
    k = OnKafka(tmp_path, kafka_bootstrap, redis_url)
    yield k
    k.close()


def test_projector_service_follows_the_log(on_kafka: OnKafka) -> None:
    k = on_kafka
    k.append(0, 1500)
    proc = k.start()
    _wait_for(3000 + k.base, k.views, proc)  # caught up
    k.append(1500, 2000)
    _wait_for(4000 + k.base, k.views, proc)  # followed
    out, _err = k.stop(proc)
    assert "projector:" in out
    tracking = k.views.tracking("audit")
    # the group is committed only behind the views: its lag is what is left to fold
    committed = k.log.committed("service-projector")
    assert all(committed.get(tp, 0) <= o for tp, o in tracking.items())

    # events appended while it is down are folded on restart, once
    k.append(2000, 2500)
    proc = k.start()
    _wait_for(5000 + k.base, k.views, proc)
    k.stop(proc)
    stats = k.views.get("projector:stats") or {}
    assert stats["applied"] == 5000 + k.base
    assert sum(t["size"] for t in (k.views.get("audit:trees") or {}).values()) == 5000 + k.base
    # the same views as one batch fold of the same log (trees included)
    clean = RedisViewStore(k.redis_url, namespace=k.ns + "clean:")
    Projector(k.log, clean, CODEC, trust=k.signer.trust).run()
    ours, theirs = k.views.snapshot(), clean.snapshot()
    clean.clear()
    assert ours["indexes"] == theirs["indexes"]
    # what the checkpoints themselves record differs: only the service holds the audit key
    signed = {"audit:checkpointed", NOTES}
    assert {key: v for key, v in ours["docs"].items() if key not in signed} == {
        key: v for key, v in theirs["docs"].items() if key not in signed
    }
    k.assert_verified(5000)


def test_a_caught_up_service_checkpoints_what_it_caught_up_on(on_kafka: OnKafka) -> None:
    """A service started behind the log signs a checkpoint once it has caught up, though no
    event follows: before, only batches polled after the catch-up were checkpointed, so a
    backlog folded by the service stayed uncovered (verify: `uncovered`) until the next event."""
    k = on_kafka
    k.append(0, 500)
    proc = k.start()
    _wait_for(1000 + k.base, k.views, proc)
    k.stop(proc)
    # read before verify, whose own catch-up may sign a checkpoint where the audit key is
    trees = {tp: t["size"] for tp, t in (k.views.get("audit:trees") or {}).items()}
    assert sum(trees.values()) == 1000 + k.base
    assert k.views.get("audit:checkpointed") == trees  # before: None (or the keyring's alone)
    k.assert_verified(1000)


def test_projector_service_on_the_embedded_log_stops_when_idle(tmp_path: Path) -> None:
    from keel.log.sqlite import SqliteEventLog
    from keel.views.sqlite import SqliteViewStore

    log = SqliteEventLog(tmp_path / "log.db")
    _append(log, 0, 300)
    proc = embedded_service(tmp_path)
    views = SqliteViewStore(tmp_path / "views.db")
    deadline = time.monotonic() + 60
    while (views.get("projector:stats") or {}).get("applied") != 600:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    _append(log, 300, 400)
    out, err = proc.communicate(timeout=60)  # folds the new events, then 3 s idle: exits
    assert proc.returncode == 0, err
    assert (views.get("projector:stats") or {})["applied"] == 800
    committed = {tp: o for tp, o in log.committed("service-projector").items() if o}
    assert committed == views.tracking("audit")  # the group ends where the views do
    assert "folded" in out


def test_projector_service_restarts_while_its_killed_predecessor_holds_the_group(
    on_kafka: OnKafka,
) -> None:
    """After a SIGKILL the dead member stays in the group until its session times out, and the
    views moved on meanwhile (a batch `keel audit project`): the restarted service moves the
    group to the views (or, if the broker refuses that, skips what the views have) and folds
    every event exactly once. (On Kafka 4.1 here the move was accepted.)"""
    k = on_kafka
    k.append(0, 500)
    proc = k.start()
    _wait_for(1000 + k.base, k.views, proc)
    proc.kill()
    proc.wait()
    k.append(500, 750)
    done = k.keel("audit", "project", "--json")
    assert done.returncode == 0, done.stderr
    proc = k.start()
    k.append(750, 1000)
    _wait_for(2000 + k.base, k.views, proc)
    time.sleep(1)  # nothing more may arrive
    k.stop(proc)
    assert (k.views.get("projector:stats") or {})["applied"] == 2000 + k.base
    assert sum(t["size"] for t in (k.views.get("audit:trees") or {}).values()) == 2000 + k.base


def test_a_second_projector_fences_off_the_first(on_kafka: OnKafka) -> None:
    """Two projector services on one log: the newer one's checkpoint writer fences the older
    one's (same transactional ID), the older one stops with a clear error at its next append
    (a checkpoint per batch, before the batch's views), and every event is folded once."""
    k = on_kafka
    k.append(0, 500)
    first = k.start()
    _wait_for(1000 + k.base, k.views, first)
    second = k.start()
    time.sleep(8)  # started, fenced the first, joined the group
    for start in range(500, 1000, 100):  # every partition gets events: both try to write
        k.append(start, start + 100)
    _wait_for(2000 + k.base, k.views, second)
    _out, first_err = first.communicate(timeout=60)
    assert first.returncode != 0 and "took over" in first_err, first_err
    k.stop(second)
    assert (k.views.get("projector:stats") or {})["applied"] == 2000 + k.base
    k.assert_verified(2000)
