"""Per-principal writer routing on its own: which runs of a batch go in as which principal."""

from __future__ import annotations

import pytest

from keel.log.kafka.routing import plan, runs
from keel.log.kafka.wire import Names
from keel.log.port import OutgoingEvent

pytestmark = pytest.mark.unit


def test_consecutive_events_of_one_principal_are_one_run() -> None:
    assert runs(["a", "a", "b", "a", "a"]) == [("a", 0, 2), ("b", 2, 3), ("a", 3, 5)]
    assert runs(["a"]) == [("a", 0, 1)]
    assert runs([]) == []


def test_an_open_broker_routes_nothing() -> None:
    events = [OutgoingEvent("registry", "k", 0, b"v", writer="promote")]
    assert plan(None, "operator", events) is None


def test_topic_names_live_under_the_prefix() -> None:
    names = Names("t1.")
    assert names.phys("deployments") == "t1.deployments"
    assert names.logical("t1.deployments") == "deployments"
    assert names.logical("other.deployments") == "other.deployments"
