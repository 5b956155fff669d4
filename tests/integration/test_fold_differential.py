"""Issue 37: the Python fold (the specification) and the native fold give the same views, trees
and verdicts over whole generated histories, on both backends (decision 0027).

Hypothesis writes a history to a real log (the embedded SQLite log, or Kafka), then the
Projector folds it twice into fresh views (SQLite, or Redis), once with fold="python" and once
with fold="native", and the two are compared: every document, index entry, set, tracking
position and tree (ViewStore.snapshot(), also as canonical JSON bytes), and the Progress each
run counted. A history holds every event type the projector reads (drawn from the latest schema
of each, some from older versions), events at one business time (ties), backdated events,
signatures by active, rotated (retired), revoked, unlisted and role-less keys, altered values and
signatures, unsigned records (some inside an adopted prefix), undecodable records, replayed
records and distinct events sharing an event ID.

On Kafka every record of a topic has one subject (so one partition): the read interleaves
partitions differently on every scan, and the comparison is about the fold cores, not about
that (the SQLite history uses several subjects; its read order is the log's).
"""

from __future__ import annotations

import json
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit.projector import Progress, Projector
from keel.codec import Codec
from keel.log.port import EventLog, OutgoingEvent
from keel.schemas.registry import SchemaVersion, load_registry
from keel.topics import AUDIT_TOPIC, TOPIC_OF
from keel.views.factory import open_views
from keel.views.port import ViewStore

pytestmark = pytest.mark.integration

REGISTRY = load_registry()
CODEC = Codec(REGISTRY)
# every event type on a topic the projector reads (the audit topic is its own output)
FOLDED = sorted(
    t for t, topic in TOPIC_OF.items() if topic != AUDIT_TOPIC and t in REGISTRY.names()
)
SETTINGS = settings(
    max_examples=15,
    deadline=None,
    derandomize=False,
    suppress_health_check=list(HealthCheck),
)
NOW_MS = int(time.time() * 1000)  # Kafka refuses timestamps in the future: every time is past
DAY_MS = 86_400_000

# -- keys: who signs, and what the fold's Trust says of them -----------------------------------


def _key(identity: str, status: str = "active") -> tuple[signing.PublicKey, Any]:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return signing.PublicKey(identity, signing.key_id(public), public, status), private


SVC, ROTATED, REVOKED, NARROW = (
    _key("svc"),
    _key("svc", "retired"),  # a rotated key: still verifies what it signed
    _key("svc", "revoked"),
    _key("narrow"),  # may write DatasetIngested only
)
UNLISTED = _key("svc")
LISTED = [SVC[0], ROTATED[0], REVOKED[0], NARROW[0]]
ROLES = {"svc": ["*"], "narrow": ["DatasetIngested"]}
SIGNERS = {
    "svc": (SVC, "svc"),
    "rotated": (ROTATED, "svc"),
    "revoked": (REVOKED, "svc"),
    "unlisted": (UNLISTED, "svc"),
    "narrow": (NARROW, "narrow"),
}


def _sign(who: str, items: list[tuple[str, bytes]]) -> list[bytes | None]:
    """One signature chunk over `items` (event type, value) by `who`'s key."""
    (public, private), identity = SIGNERS[who]
    as_signed = signing.PublicKey(identity, public.id, public.public, "active")
    trust = signing.Trust([as_signed], roles={identity: ["*"]})
    return signing.Signer(trust, {public.id: private}, identity).sign(
        [(identity, kind, value) for kind, value in items]
    )


# -- events drawn from the schemas -------------------------------------------------------------
WORDS = ["a", "b", "fam", "prod", "staging", "m1", "m2", "x:y", "ü"]
JSON_TEXTS = ["{}", '{"lr": 0.1, "depth": 3}', '[1, 2.5, "z"]', '{"n": {"k": [true, null]}}']
SHARED_IDS = [f"{topic}-{i}" for topic in ("registry", "deployments") for i in range(3)]
ISO_TIMES = ["2025-01-01T00:00:00+00:00", "2025-06-30T12:00:00+00:00", "2026-01-02T03:04:05Z"]
TIMES = [NOW_MS - 30 * DAY_MS, NOW_MS - 30 * DAY_MS + 1000, NOW_MS - DAY_MS, NOW_MS - 5000]


def _strings(name: str) -> st.SearchStrategy[str]:
    if name.endswith("_json"):  # the fold parses these
        return st.sampled_from(JSON_TEXTS)
    if name.startswith("window_"):
        return st.sampled_from(ISO_TIMES)
    if name.endswith("event_id"):  # pending_event_id, stats_event_id...: the shared IDs below
        return st.sampled_from(SHARED_IDS)
    return st.sampled_from(WORDS) | st.text(max_size=5)  # shared values join documents


def _strategy(schema: Any, names: dict[str, Any], field: str = "") -> st.SearchStrategy[Any]:
    """Values fastavro encodes with `schema` (expanded JSON), as an event of it would hold:
    finite numbers, JSON where the fold parses JSON, words shared between events."""
    if isinstance(schema, list):
        return st.one_of([_strategy(b, names, field) for b in schema])
    if isinstance(schema, str):
        if schema in names:
            return names[schema]
        return _strategy({"type": schema}, names, field)
    t = schema["type"]
    if isinstance(t, (dict, list)):
        return _strategy(t, names, field)
    if schema.get("logicalType") == "timestamp-millis":
        return st.sampled_from(TIMES)
    simple: dict[str, st.SearchStrategy[Any]] = {
        "null": st.none(),
        "boolean": st.booleans(),
        "int": st.integers(-(2**31), 2**31 - 1),
        "long": st.integers(-(2**53), 2**53),
        "float": st.floats(width=32, allow_nan=False, allow_infinity=False),
        "double": st.floats(allow_nan=False, allow_infinity=False),
        "bytes": st.binary(max_size=8),
        "string": _strings(field),
    }
    if t in simple:
        return simple[t]
    if t == "array":
        return st.lists(_strategy(schema["items"], names, field), max_size=3)
    if t == "map":
        return st.dictionaries(
            st.sampled_from(WORDS), _strategy(schema["values"], names, field), max_size=3
        )
    if t == "enum":
        strategy: st.SearchStrategy[Any] = st.sampled_from(schema["symbols"])
    elif t == "record":
        fields = {f["name"]: _strategy(f["type"], names, f["name"]) for f in schema["fields"]}
        strategy = st.fixed_dictionaries(fields)
    else:
        raise AssertionError(f"the test does not generate {t} yet: add it")
    full = schema["name"] if "." in schema["name"] else schema.get("namespace", "keel.events")
    names[schema["name"]] = names[f"{full}.{schema['name']}"] = strategy
    return strategy


VERSIONS: dict[str, list[SchemaVersion]] = {n: list(REGISTRY.history(n)) for n in FOLDED}
STRATEGIES = {v.fingerprint: _strategy(v.schema, {}) for vs in VERSIONS.values() for v in vs}


@dataclass(frozen=True)
class Item:
    """One record to append: its event (or noise), who signs it and how it is damaged."""

    topic: str
    kind: str
    value: bytes
    signer: str | None  # None: unsigned
    damage: str  # none, value, sig, noise, replay


@st.composite
def item(draw: st.DrawFn, subjects: list[str]) -> Item:
    kind = draw(st.sampled_from(FOLDED))
    versions = VERSIONS[kind]
    # mostly the latest version (the native decoder's), now and then an older writer's
    version = versions[-1] if draw(st.integers(0, 4)) else draw(st.sampled_from(versions))
    record = draw(STRATEGIES[version.fingerprint])
    topic = TOPIC_OF[kind]
    env = record.get("envelope")
    if isinstance(env, dict):
        env.update(
            event_type=kind,
            # a few IDs per topic: distinct events sharing an ID (the first applied wins)
            event_id=draw(st.sampled_from([f"{topic}-{i}" for i in range(3)]))
            if draw(st.integers(0, 5)) == 0
            else str(uuid.UUID(int=draw(st.integers(0, 2**128 - 1)))),
            subject=draw(st.sampled_from(subjects)),
            occurred_at=draw(st.sampled_from(TIMES)),  # ties, backdated and recent
            causation_id=draw(st.none() | st.sampled_from(["c1", "c2"])),
        )
    value = Codec.encode_with(version, record)
    signer = draw(st.sampled_from(["svc"] * 6 + ["rotated", "revoked", "unlisted", "narrow", None]))
    damage = draw(st.sampled_from(["none"] * 8 + ["value", "sig", "noise", "replay"]))
    if damage == "noise":
        value = draw(st.binary(max_size=24))
    return Item(topic, kind, value, signer, damage)


def history(subjects: list[str]) -> st.SearchStrategy[list[Item]]:
    return st.lists(item(subjects), min_size=8, max_size=60)


def outgoing(items: list[Item], one_subject: str | None) -> list[OutgoingEvent]:
    """The records to append: runs signed by one key are one signature chunk, then damaged."""
    sigs: list[bytes | None] = [None] * len(items)
    start = 0
    for i in range(1, len(items) + 1):
        if i == len(items) or items[i].signer != items[start].signer:
            who = items[start].signer
            if who is not None:
                run = items[start:i]
                sigs[start:i] = _sign(who, [(x.kind, x.value) for x in run])
            start = i
    out: list[OutgoingEvent] = []
    for x, sig in zip(items, sigs, strict=True):
        value = x.value
        if x.damage == "value" and value:
            value = value[:-1] + bytes([value[-1] ^ 1])  # altered under its signature
        elif x.damage == "sig" and sig:
            sig = sig[:-1] + bytes([sig[-1] ^ 1])
        key = one_subject or f"s{len(value) % 3}"
        o = OutgoingEvent(x.topic, key, NOW_MS - DAY_MS, value, sig, x.kind)
        out.append(o)
        if x.damage == "replay":  # the same record again, later
            out.append(o)
    return out


# -- the fold, twice ---------------------------------------------------------------------------


def fold(log: EventLog, views: ViewStore, trust: signing.Trust, core: str) -> Progress:
    # trust without a signer: no checkpoint is appended, so both folds read the same log
    progress = Projector(log, views, CODEC, trust=trust, fold=core, batch_size=16).run()
    assert progress.fold == core, f"KEEL_FOLD={core} ran the {progress.fold} fold"
    return progress


def trust_for(log: EventLog) -> signing.Trust:
    """The fold's Trust: the listed keys and roles, and an adopted prefix (unsigned records
    there are admitted as adopted history) on the first tree of the first topic read."""
    first = next(iter(log.read()), None)
    adopted = {}
    if first is not None:
        adopted = {first.tp: (0, "a" * 64, 2)}
    return signing.Trust(LISTED, roles=ROLES, adopted=adopted)


def compare(log: EventLog, open_fresh: Any) -> None:
    trust = trust_for(log)
    results = []
    for core in ("python", "native"):
        with open_fresh(core) as views:
            progress = fold(log, views, trust, core)
            results.append((views.snapshot(), {**progress.__dict__, "fold": "-"}))
    (python, p), (native, n) = results
    assert n == p, f"the folds counted differently: python {p}, native {n}"
    assert canonical(native) == canonical(python), "the native fold's views differ"
    assert native == python


def canonical(snapshot: dict[str, Any]) -> bytes:
    """The snapshot as bytes: sets as sorted lists, keys sorted, floats as repr."""
    return json.dumps(
        snapshot, sort_keys=True, default=lambda s: sorted(s), ensure_ascii=False
    ).encode()


# -- the backends ------------------------------------------------------------------------------


@SETTINGS
@given(history(["s0", "s1", "s2"]))
def test_both_folds_agree_on_sqlite(items: list[Item]) -> None:
    from keel.log.sqlite import SqliteEventLog

    with tempfile.TemporaryDirectory(prefix="keel-diff-") as tmp:
        log = SqliteEventLog(Path(tmp) / "log.db")
        try:
            log.append(outgoing(items, None))

            @contextmanager
            def fresh(core: str) -> Iterator[ViewStore]:
                views = open_views(f"sqlite:///{Path(tmp) / core}.db")
                try:
                    yield views
                finally:
                    views.close()

            compare(log, fresh)
        finally:
            log.close()


@pytest.fixture(scope="module")
def kafka_redis(kafka_bootstrap: str, redis_url: str) -> tuple[str, str]:
    return kafka_bootstrap, redis_url.rsplit("/", 1)[0] + "/9"


@SETTINGS
@given(items=history(["one"]))
def test_both_folds_agree_on_kafka_and_redis(
    kafka_redis: tuple[str, str], items: list[Item]
) -> None:
    from keel.log.kafka import KafkaEventLog, new_prefix

    bootstrap, redis = kafka_redis
    prefix = new_prefix()  # each example its own topics and views
    log = KafkaEventLog(bootstrap, prefix=prefix, provision_topics=True)
    try:
        log.append(outgoing(items, "one"))

        @contextmanager
        def fresh(core: str) -> Iterator[ViewStore]:
            views = open_views(f"{redis}?namespace={prefix.rstrip('.')}:{core}:")
            try:
                yield views
            finally:
                views.clear()
                views.close()

        compare(log, fresh)
    finally:
        log.close()
