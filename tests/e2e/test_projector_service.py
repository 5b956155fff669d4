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
from pathlib import Path

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import to_outgoing
from keel.codec import Codec
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.schemas.registry import load_registry
from keel.views.redis import RedisViewStore
from tests.faults.test_projector_kill import events

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
KEEL = str(Path(sys.executable).with_name("keel"))


def _wait_for(applied: int, views: RedisViewStore, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (views.get("projector:stats") or {}).get("applied") == applied:
            return
        time.sleep(0.2)
    proc.terminate()
    pytest.fail(f"projector did not reach {applied} events: {proc.communicate(timeout=30)}")


def test_projector_service_follows_the_log(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    codec = Codec(load_registry())
    prefix = new_prefix()
    ns = prefix.replace(".", ":")
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    views = RedisViewStore(redis_url, namespace=ns)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path),
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        KEEL_VIEWS=f"{redis_url}?namespace={ns}",
    )

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [KEEL, "service", "run", "projector"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    log.append([to_outgoing(codec, e) for i in range(0, 1500) for e in events(i)])
    proc = start()
    try:
        _wait_for(3000, views, proc)  # caught up
        log.append([to_outgoing(codec, e) for i in range(1500, 2000) for e in events(i)])
        _wait_for(4000, views, proc)  # followed
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert "projector:" in out
        tracking = views.tracking("audit")
        # the group is committed only behind the views: its lag is what is left to fold
        committed = log.committed("service-projector")
        assert all(committed.get(tp, 0) <= o for tp, o in tracking.items())

        # events appended while it is down are folded on restart, once
        log.append([to_outgoing(codec, e) for i in range(2000, 2500) for e in events(i)])
        proc = start()
        _wait_for(5000, views, proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        stats = views.get("projector:stats") or {}
        assert stats["applied"] == 5000
        assert (views.get("audit:head") or {})["seq"] == 5000  # one chain link per event
        # the same views as one batch fold of the same log
        clean = RedisViewStore(redis_url, namespace=ns + "clean:")
        Projector(log, clean, codec, chain=False).run()
        ours, theirs = views.snapshot(), clean.snapshot()
        assert ours["indexes"] == theirs["indexes"]
        assert {k: v for k, v in ours["docs"].items() if k != "audit:head"} == {
            k: v for k, v in theirs["docs"].items() if k != "audit:head"
        }
        verify = subprocess.run(
            [KEEL, "audit", "verify", "--json"], env=env, capture_output=True, text=True
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr
        assert json.loads(verify.stdout) == {
            "ok": True,
            "links": 5000,
            "events": 5000,
            "break": None,
        }
        clean.clear()
    finally:
        if proc.poll() is None:
            proc.kill()
        views.clear()
        log.close()


def test_projector_service_on_the_embedded_log_stops_when_idle(tmp_path: Path) -> None:
    from keel.log.sqlite import SqliteEventLog
    from keel.views.sqlite import SqliteViewStore

    codec = Codec(load_registry())
    log = SqliteEventLog(tmp_path / "log.db")
    log.append([to_outgoing(codec, e) for i in range(0, 300) for e in events(i)])
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(tmp_path)
    proc = subprocess.Popen(
        [KEEL, "service", "run", "projector", "--max-idle", "3"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    views = SqliteViewStore(tmp_path / "views.db")
    deadline = time.monotonic() + 60
    while (views.get("projector:stats") or {}).get("applied") != 600:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    log.append([to_outgoing(codec, e) for i in range(300, 400) for e in events(i)])
    out, err = proc.communicate(timeout=60)  # folds the new events, then 3 s idle: exits
    assert proc.returncode == 0, err
    assert (views.get("projector:stats") or {})["applied"] == 800
    committed = {tp: o for tp, o in log.committed("service-projector").items() if o}
    assert committed == views.tracking("audit")  # the group ends where the views do
    assert "folded" in out


def test_projector_service_restarts_while_its_killed_predecessor_holds_the_group(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    """After a SIGKILL the dead member stays in the group until its session times out, and the
    views moved on meanwhile (a batch `keel audit project`): the restarted service moves the
    group to the views (or, if the broker refuses that, skips what the views have) and folds
    every event exactly once. (On Kafka 4.1 here the move was accepted.)"""
    codec = Codec(load_registry())
    prefix = new_prefix()
    ns = prefix.replace(".", ":")
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    views = RedisViewStore(redis_url, namespace=ns)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path),
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        KEEL_VIEWS=f"{redis_url}?namespace={ns}",
    )
    cmd = [KEEL, "service", "run", "projector"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    log.append([to_outgoing(codec, e) for i in range(0, 500) for e in events(i)])
    proc = subprocess.Popen(cmd, env=env, **pipes)  # type: ignore[call-overload]
    try:
        _wait_for(1000, views, proc)
        proc.kill()
        proc.wait()
        log.append([to_outgoing(codec, e) for i in range(500, 750) for e in events(i)])
        done = subprocess.run(
            [KEEL, "audit", "project", "--json"], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        proc = subprocess.Popen(cmd, env=env, **pipes)  # type: ignore[call-overload]
        log.append([to_outgoing(codec, e) for i in range(750, 1000) for e in events(i)])
        _wait_for(2000, views, proc)
        time.sleep(1)  # nothing more may arrive
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert (views.get("projector:stats") or {})["applied"] == 2000
        assert (views.get("audit:head") or {})["seq"] == 2000
    finally:
        if proc.poll() is None:
            proc.kill()
        views.clear()
        log.close()


def test_a_second_projector_fences_off_the_first(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str
) -> None:
    """Two projector services on one log: the newer one's chain writer fences the older one's
    (same transactional ID), the older one stops with a clear error at its next append, and
    the chain stays one chain with every event once."""
    codec = Codec(load_registry())
    prefix = new_prefix()
    ns = prefix.replace(".", ":")
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix)
    views = RedisViewStore(redis_url, namespace=ns)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path),
        KEEL_BUS=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        KEEL_VIEWS=f"{redis_url}?namespace={ns}",
    )
    cmd = [KEEL, "service", "run", "projector"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    log.append([to_outgoing(codec, e) for i in range(0, 500) for e in events(i)])
    first = subprocess.Popen(cmd, env=env, **pipes)  # type: ignore[call-overload]
    second = None
    try:
        _wait_for(1000, views, first)
        second = subprocess.Popen(cmd, env=env, **pipes)  # type: ignore[call-overload]
        time.sleep(8)  # started, fenced the first, joined the group
        for start in range(500, 1000, 100):  # every partition gets events: both try to write
            log.append(
                [to_outgoing(codec, e) for i in range(start, start + 100) for e in events(i)]
            )
        _wait_for(2000, views, second)
        _out, first_err = first.communicate(timeout=60)
        assert first.returncode != 0 and "took over" in first_err, first_err
        second.send_signal(signal.SIGTERM)
        _out, err = second.communicate(timeout=60)
        assert second.returncode == 0, err
        assert (views.get("projector:stats") or {})["applied"] == 2000
        verify = subprocess.run(
            [KEEL, "audit", "verify", "--json"], env=env, capture_output=True, text=True
        )
        assert json.loads(verify.stdout) == {
            "ok": True,
            "links": 2000,
            "events": 2000,
            "break": None,
        }
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
        views.clear()
        log.close()
