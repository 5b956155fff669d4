"""keel_fold's pure-Rust work runs with the GIL released (decision 0027), so another Python
thread (verify's, a prefetching reader) runs meanwhile: `Trust.check_many` (leaf hashes,
inclusion paths, Ed25519), `leaves`, `extend` (hashing and the tree's edge) and `Fold.decode`
(Avro into Rust values).

How it is seen without a clock: the switch interval is set far beyond the test's length, so a
thread waiting for the GIL gets it only when the running thread gives it up itself. A second
thread is made ready and waits for the GIL; the test thread then calls the entry point (a small
batch, repeatedly, until the other thread ran or a fixed number of calls passed). Holding the
GIL throughout, the entry point never lets it run.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import keel_fold
import pytest

from keel import signing
from keel.audit import foldcore
from keel.log.port import LogRecord
from tests.unit.test_native_fold import CODEC, LISTED, _sign

pytestmark = pytest.mark.unit

CALLS = 2000  # calls given to the other thread to run (each gives it the GIL when it releases)


@pytest.fixture
def switch_rarely() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1000.0)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def ran_meanwhile(call: Callable[[], Any]) -> bool:
    """Whether another thread ran while `call` was called (at most CALLS times)."""
    go, ran = threading.Event(), []
    other = threading.Thread(target=lambda: (go.wait(), ran.append(1)))
    other.start()
    go.set()  # the other thread wakes up and waits for the GIL, which this thread holds
    for _ in range(CALLS):
        call()
        if ran:
            break
    seen = bool(ran)
    other.join()  # (join waits without the GIL: the other thread finishes here anyway)
    return seen


RECORDS = [
    LogRecord("keel.models", 0, i, "k", 1, b"v" * 200, b"s" * 90, recorded_ms=2) for i in range(256)
]


def test_a_thread_waiting_for_the_gil_does_not_run_while_python_holds_it(
    switch_rarely: None,
) -> None:
    # the method's own check: plain Python work never gives the GIL up before the interval
    assert not ran_meanwhile(lambda: sum(range(2000)))


def test_leaves_releases_the_gil(switch_rarely: None) -> None:
    fields = [
        (r.topic, r.partition, r.offset, r.recorded_ms, r.timestamp_ms, r.key, r.value, r.sig)
        for r in RECORDS
    ]
    assert ran_meanwhile(lambda: keel_fold.leaves(fields, [True] * len(fields)))


def test_extend_releases_the_gil(switch_rarely: None) -> None:
    assert ran_meanwhile(lambda: keel_fold.extend(0, [], 0, RECORDS, [3]))


def test_check_many_releases_the_gil(switch_rarely: None) -> None:
    values = [("ModelDeployed", b"event %d" % i) for i in range(16)]
    sigs = _sign("deploy", values)
    items = [(v, s, t) for (t, v), s in zip(values, sigs, strict=True)]
    core = foldcore.NativeCore(CODEC, signing.Trust(LISTED))
    # a fresh Trust each call: the Ed25519 check itself, not the cache of verified chunks
    keys = [(k.id, k.identity, k.public, k.status) for k in signing.Trust(LISTED).keys.values()]
    assert ran_meanwhile(lambda: keel_fold.Trust(keys, {"deploy": ["*"]}).check_many(items))
    assert core.check_many(items) == signing.Trust(LISTED).check_many(items)


def test_fold_decode_releases_the_gil(switch_rarely: None) -> None:
    from tests.unit.test_native_serving_stats import _stats_event

    core = foldcore.NativeCore(CODEC, signing.Trust())
    decoder = core._decoder_now()
    values = [_stats_event(i, "2024-01-01T00:00:00+00:00", {"x": i}) for i in range(32)]
    assert ran_meanwhile(lambda: core._fold.decode(decoder, values))
