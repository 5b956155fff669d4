"""The audit fold is a function of the log, not of the order a reader interleaves its
partitions and topics (decision 0035).

On Kafka a scan of the event topics interleaves partitions (and topics) differently each time;
the embedded log reads one global order. A rebuild, a replica, verify's fold and the disaster
drill all fold the same log again and expect the same views. Histories are drawn as
test_native_evolve draws them (every schema version, pooled IDs so events meet in the same
documents, ties, backdating, adopted events), each event put on one of several
(topic, partition) streams with the offsets Kafka would give it there (each partition counts
from 0, so offsets of different partitions meet). Two interleavings that keep every
partition's own order are folded by the specification (foldcore.PythonCore over
projection.evolve, in batches, as the projector folds) into fresh SQLite views: every
document and index entry must be equal.

Event IDs are unique within a history here: which of two records sharing an event ID is
applied is the projector's choice (the first read), not evolve's (decision 0035 says so).
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore, projection
from keel.codec import Codec
from keel.events import decode_event, envelope
from keel.events import generated as g
from keel.log.port import LogRecord
from keel.views.sqlite import SqliteViewStore
from tests.unit.test_native_evolve import POOLS, RECORDED, TIMES, history_event
from tests.unit.test_native_fold import CODEC, REGISTRY, STRATEGIES

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
STREAMS = [("registry", 0), ("registry", 1), ("training", 0), ("keyring", 2)]


# The event types whose documents several events write (lists, "latest" fields, counters), in
# their latest version, with IDs from a pool wider than the history: few share one.
SHARING = [
    "ModelTrained", "ModelEvaluated", "PromotionPending", "PromotionReviewed", "ModelPromoted",
    "PromotionRejected", "TrustReset", "DatasetIngested", "RecordQuarantined", "FeaturesBuilt",
    "ArtifactRecorded", "ModelDeployed",
]  # fmt: skip
EVENT_IDS = [f"e{i}" for i in range(40)]


@st.composite
def sharing_event(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """(an encoded event of a type that shares documents, its recorded ms, adopted)."""
    version = REGISTRY.history(draw(st.sampled_from(SHARING)))[-1]
    record = dict(draw(STRATEGIES[version.fingerprint]))
    env = dict(record["envelope"])
    env["event_id"] = draw(st.sampled_from(EVENT_IDS))
    env["occurred_at"] = draw(st.sampled_from(TIMES))
    env["causation_id"] = None
    env["actor"] = draw(st.sampled_from(["ann", "bob"]))
    record["envelope"] = env
    for name, value in list(record.items()):
        if name == "pending_event_id":
            record[name] = draw(st.sampled_from(EVENT_IDS[:3]))
        elif name in POOLS and isinstance(value, str):
            record[name] = draw(st.sampled_from([p for p in POOLS[name] if isinstance(p, str)]))
        elif name == "parents":
            record[name] = draw(st.sampled_from([[], ["a"], ["a", "b"]]))
        elif name in ("params_json", "stats_json", "metrics_json"):
            record[name] = "{}"
        elif name in ("records_in", "accepted"):
            # summed per family (quarantine:): drawn from the whole long range, two of them
            # passed 64 bits and the views refused the sum in both folds (not this test's
            # question; test_native_evolve covers it)
            record[name] = draw(st.integers(0, 10**6))
    return Codec.encode_with(version, record), draw(st.sampled_from(RECORDED)), draw(st.booleans())


def streams(
    views: SqliteViewStore, items: list[tuple[bytes, int, bool]], where: list[int]
) -> list[list[Any]]:
    """The history's events (the first of each event ID) on their streams, in order, as
    (record, adopted); a stream's offsets count from 0 as a Kafka partition's do. Events the
    fold refuses alone (a JSON integer past 64 bits) are left out: test_native_evolve covers
    them, and here they would only stop the fold at different places."""
    out: list[list[Any]] = [[] for _ in STREAMS]
    seen: set[str] = set()
    for (data, rec, adopted), s in zip(items, itertools.cycle(where), strict=False):
        eid = decode_event(CODEC, data).envelope.event_id
        if eid in seen or not _folds(views, data):
            continue
        seen.add(eid)
        topic, part = STREAMS[s]
        offset = len(out[s])
        out[s].append((LogRecord(topic, part, offset, "k", rec, data, None, rec), adopted))
    return out


def _folds(views: SqliteViewStore, data: bytes) -> bool:
    try:
        fold(views, [(LogRecord("t", 0, 0, "k", 0, data, None, 0), False)], 1)
    except Exception:
        return False
    return True


def interleave(parts: list[list[Any]], rnd: random.Random) -> list[Any]:
    """One read of the streams: each partition's own order kept, the rest as `rnd` picks."""
    heads = [0] * len(parts)
    out = []
    while True:
        live = [i for i, p in enumerate(parts) if heads[i] < len(p)]
        if not live:
            return out
        i = rnd.choice(live)
        out.append(parts[i][heads[i]])
        heads[i] += 1


def fold(views: SqliteViewStore, records: list[Any], batch: int) -> dict[str, Any]:
    """The records folded by the specification in batches of `batch`, into cleared views."""
    views.clear()
    core = foldcore.PythonCore(CODEC, signing.Trust())
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        decoded = core.decode_fold([r for r, _ in chunk])
        adopted = {(r.topic, r.partition, r.offset): a for r, a in chunk}
        apply = [(d, adopted[(d[0].topic, d[0].partition, d[0].offset)]) for d in decoded]
        index, puts = core.evolve(decoded, apply, views)
        views.apply([*index, *puts])
    return views.snapshot()


@pytest.fixture(scope="module")
def views(tmp_path_factory: pytest.TempPathFactory) -> SqliteViewStore:
    return SqliteViewStore(Path(tmp_path_factory.mktemp("fold-order") / "views.db"))


@SETTINGS
@given(
    st.lists(sharing_event() | history_event(), min_size=2, max_size=30),
    st.lists(st.integers(0, len(STREAMS) - 1), min_size=1, max_size=24),
    st.randoms(use_true_random=False),
    st.integers(1, 7),
)
def test_two_interleavings_of_the_partitions_fold_to_the_same_views(
    views: SqliteViewStore,
    items: list[tuple[bytes, int, bool]],
    where: list[int],
    rnd: random.Random,
    batch: int,
) -> None:
    parts = streams(views, items, where)
    try:
        first = fold(views, interleave(parts, rnd), batch)
        second = fold(views, interleave(parts, rnd), 1 + batch % 5)
    except TypeError:  # sums past 64 bits, which orjson refuses to write: not about order
        assume(False)
    assert differences(first, second) == []


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, str, Any, Any]]:
    """What two snapshots hold differently: (part, key, one, the other)."""
    out = []
    for part in sorted({*a, *b}):
        x, y = a.get(part, {}), b.get(part, {})
        out += [(part, k, x.get(k), y.get(k)) for k in sorted({*x, *y}) if x.get(k) != y.get(k)]
    return out


# -- the reproductions: a topic given more partitions later -------------------------------------
# Kafka hashes a key to another partition once its topic has more partitions: a model's (or a
# family/env's) later events then sit in a new partition beside its earlier ones, and a read
# may return the later ones first.
T1 = datetime(2026, 3, 1, tzinfo=UTC)


def _env(kind: str, eid: str, actor: str = "ann") -> g.Envelope:
    return envelope(kind, subject="s", service="t", code_version="c", actor=actor,
                    correlation_id="r", occurred_at=T1, event_id=eid)  # fmt: skip


def _evaluated(eid: str, f1: float) -> g.ModelEvaluated:
    return g.ModelEvaluated(
        envelope=_env("ModelEvaluated", eid), family="fam", model_id="m",
        eval_report_id=eid, eval_dataset_id="d", metrics={"f1": f1},
    )  # fmt: skip


def _pending(eid: str, model: str) -> g.PromotionPending:
    return g.PromotionPending(
        envelope=_env("PromotionPending", eid), family="fam", model_id=model, env="prod",
        eval_report_id="r", metrics={}, gates=[], incumbent_metrics={}, reason="why",
        approvals_required=2,
    )  # fmt: skip


def _reviewed(eid: str, actor: str, verdict: str = "approved") -> g.PromotionReviewed:
    return g.PromotionReviewed(envelope=_env("PromotionReviewed", eid, actor), family="fam",
                               model_id="m", env="prod", pending_event_id="p1",
                               verdict=verdict, reason="ok")  # fmt: skip


def _read(order: list[tuple[Any, int, int]]) -> dict[str, Any]:
    """The documents a fold of (event, recorded ms, offset), in this order, leaves."""
    docs: dict[str, Any] = {}
    for event, recorded, offset in order:
        docs.update(projection.evolve(docs, event, recorded, offset).docs)
    return docs


def _both(events: list[tuple[Any, int, int]]) -> tuple[dict[str, Any], dict[str, Any]]:
    return _read(events), _read(list(reversed(events)))


MS = int(T1.timestamp() * 1000)


def test_a_models_latest_evaluation_is_the_last_recorded_whichever_partition_is_read_first() -> (
    None
):
    # the older in partition 0 at offset 7, the newer a minute later at offset 0 of partition 2
    one, other = _both(
        [(_evaluated("e-old", 0.5), MS, 7), (_evaluated("e-new", 0.9), MS + 60_000, 0)]
    )
    assert one["model:m"] == other["model:m"]
    assert one["model:m"]["evaluations"][-1]["metrics"] == {"f1": 0.9}  # `keel audit diff`'s


def test_reviews_approvers_and_the_waiting_list_follow_the_log_whichever_is_read_first() -> None:
    one, two = _both(
        [
            (_pending("p1", "m"), MS, 3),
            (_reviewed("v1", "bob"), MS + 1000, 4),
            (_pending("p2", "m2"), MS + 2000, 0),
            (_reviewed("v2", "ann"), MS + 3000, 1),
        ]
    )
    assert one["pending:p1"] == two["pending:p1"]
    assert one["pending:p1"]["approvers"] == ["bob", "ann"]
    assert one["open:fam:prod"] == two["open:fam:prod"]
    assert one["open:fam:prod"]["pending"] == ["p1", "p2"]  # oldest first


def test_a_promotion_concluded_under_another_env_leaves_every_fold_alike() -> None:
    # a signed writer's promotion of it that names staging (the pipeline never writes this)
    promoted = g.ModelPromoted(
        envelope=_env("ModelPromoted", "x1"), family="fam", model_id="m", env="staging",
        eval_report_id="r", metrics={}, gates=[], incumbent_metrics={}, reason="ok",
        pending_event_id="p1",
    )  # fmt: skip
    one, two = _both([(_pending("p1", "m"), MS, 0), (promoted, MS + 1000, 0)])
    assert one["open:fam:prod"] == two["open:fam:prod"]
    assert one["pending:p1"]["concluded"] and two["pending:p1"]["concluded"]
