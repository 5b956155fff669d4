"""Parallel test workers (decision 0033) each pick ports in a range of their own: the kernel's
port 0 is shared by every process on the machine, so two workers could be handed one port
between the pick and the server's bind."""

from __future__ import annotations

import itertools
import socket

import pytest

from deploy import processes
from tests.conftest import worker_port_range

pytestmark = pytest.mark.unit


def test_worker_ranges_are_disjoint_and_below_the_ephemeral_ports() -> None:
    for count in (1, 2, 3, 4, 16):
        spans = [worker_port_range(f"gw{i}", count, 32768) for i in range(count)]
        assert spans[0][0] >= 10000 and spans[-1][1] <= 32768
        for (lo, hi), (lo2, _) in itertools.pairwise(spans):
            assert lo < hi <= lo2  # no port in two workers' ranges


def test_free_port_stays_in_its_range_skips_taken_ports_and_never_repeats(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # below every worker's range (tests/conftest.py gives them 10000 and up), so no server of
    # this run holds one of these ports meanwhile
    lo, hi = 9700, 9712
    taken = socket.socket()
    taken.bind(("127.0.0.1", lo))  # another server of the worker holds one already
    taken.listen()
    # what else on the machine left free
    free = [p for p in range(lo + 1, hi) if processes.bindable(p)]
    monkeypatch.setenv(processes.PORT_RANGE, f"{lo}-{hi}")
    monkeypatch.setattr(processes, "_handed", set())
    try:
        got = [processes.free_port() for _ in range(len(free))]
        assert sorted(got) == free  # each free one once, none outside
        with pytest.raises(processes.LaunchError, match="no free port"):
            processes.free_port()  # all handed out: says so instead of repeating one
    finally:
        taken.close()


def test_a_malformed_range_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(processes.PORT_RANGE, "21000")
    with pytest.raises(processes.LaunchError, match="LO-HI"):
        processes.free_port()
