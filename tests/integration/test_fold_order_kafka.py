"""On Kafka the audit fold gives the same views whatever order a read interleaves the event
topics' partitions in (decision 0035).

Hypothesis draws histories of the event types whose documents several events write (lists,
"latest" fields, counters: test_fold_order's generator, IDs from small pools so events meet in
the same documents, ties and backdating), all signed by a listed key, and writes them to a
real broker under five subjects, so one model's evaluations, one promotion's reviews, one
dataset recorded twice... sit in different partitions of a topic (three each). Then:

- two Projectors (the Python fold in batches of 16, the native one in batches of 3) fold the
  log into fresh Redis views: equal snapshots;
- the same records, read back from Kafka with their offsets and recorded times, are folded by
  the specification (foldcore.PythonCore) in another interleaving, each partition's records
  after the next one's, last partition first, into fresh SQLite views: every document and
  index entry equal to the Projector's.

Records sharing an event ID are left out: which one applies is the projector's first read
(decision 0035 says so), not the fold's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore, keys
from keel.audit.projector import Projector
from keel.events import decode_event
from keel.log.port import EventLog, LogRecord, OutgoingEvent
from keel.topics import topic_for
from keel.views.factory import open_views
from keel.views.port import ViewStore
from keel.views.sqlite import SqliteViewStore
from tests.integration.test_fold_differential import CODEC, DAY_MS, NOW_MS, _sign
from tests.integration.test_fold_differential import trust_for as _trust_for
from tests.unit.test_fold_order import differences, sharing_event

pytestmark = pytest.mark.integration

SETTINGS = settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
SUBJECTS = [f"s{i}" for i in range(5)]
# What only a Projector writes (its trees, shape, the event IDs applied, tracking): the fold of
# the records alone is compared on the rest.
PROJECTOR_ONLY = (keys.TREES, keys.SHAPE)


def signed(values: list[bytes]) -> list[OutgoingEvent]:
    """Each distinct event once (the first of an event ID), signed by the listed key, under
    the subjects in turn."""
    kept: list[tuple[str, bytes]] = []
    seen: set[str] = set()
    for value in values:
        event = decode_event(CODEC, value)
        if event.envelope.event_id not in seen:
            seen.add(event.envelope.event_id)
            kept.append((event.EVENT_TYPE, value))
    sigs = _sign("svc", kept)
    return [
        OutgoingEvent(topic_for(kind), SUBJECTS[i % len(SUBJECTS)], NOW_MS - DAY_MS, v, sig, kind)
        for i, ((kind, v), sig) in enumerate(zip(kept, sigs, strict=True))
    ]


def project(log: EventLog, views: ViewStore, fold: str, batch: int) -> dict[str, Any]:
    trust = _trust_for(log)  # the listed keys; no signer: both folds read the same log
    progress = Projector(log, views, CODEC, trust=trust, fold=fold, batch_size=batch).run()
    assert progress.fold == fold
    return views.snapshot()


def refold(log: EventLog, views: SqliteViewStore) -> dict[str, Any]:
    """The log's records folded by the specification, partitions one after another, the last
    partition of the last topic first."""
    parts: dict[tuple[str, int], list[LogRecord]] = {}
    for rec in log.read():
        parts.setdefault(rec.tp, []).append(rec)
    records = [r for tp in sorted(parts, reverse=True) for r in parts[tp]]
    core = foldcore.PythonCore(CODEC, signing.Trust())
    for start in range(0, len(records), 7):
        decoded = core.decode_fold(records[start : start + 7])
        index, puts = core.evolve(decoded, [(d, False) for d in decoded], views)
        views.apply([*index, *puts])
    return views.snapshot()


def folded(snapshot: dict[str, Any]) -> dict[str, Any]:
    docs = {k: v for k, v in snapshot["docs"].items() if k not in PROJECTOR_ONLY}
    return {"docs": docs, "indexes": snapshot["indexes"]}


@pytest.fixture(scope="module")
def redis(redis_url: str) -> str:
    return redis_url.rsplit("/", 1)[0] + "/10"


@SETTINGS
@given(items=st.lists(sharing_event(), min_size=12, max_size=40))
def test_kafka_partitions_read_in_any_order_fold_to_the_same_views(
    kafka_bootstrap: str,
    redis: str,
    tmp_path_factory: pytest.TempPathFactory,
    items: list[tuple[bytes, int, bool]],
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix

    prefix = new_prefix()  # each example its own topics and views
    log = KafkaEventLog(kafka_bootstrap, prefix=prefix, provision_topics=True)
    opened: list[ViewStore] = []
    try:
        log.append(signed([value for value, _, _ in items]))
        runs = []
        for fold, batch in (("python", 16), ("native", 3)):
            views = open_views(f"{redis}?namespace={prefix.rstrip('.')}:{fold}:")
            opened.append(views)
            runs.append(project(log, views, fold, batch))
        assert differences(runs[0], runs[1]) == []
        spec = SqliteViewStore(Path(tmp_path_factory.mktemp("refold") / "views.db"))
        try:
            assert differences(folded(runs[0]), folded(refold(log, spec))) == []
        finally:
            spec.close()
    finally:
        for views in opened:
            views.clear()
            views.close()
        log.close()
