"""The native evolve (keel_fold.Fold, decision 0027) against its specification,
keel.audit.projection.evolve, byte for byte once serialized.

Event histories are drawn from every version of every event schema (older versions and the
types projection.py folds in Python go through the Python evolve inside the native core, over
its documents), their IDs, families, environments, models, pending promotions and times drawn
from small pools so events meet in the same documents: ties in business time, backdated
records, records without a recorded time, empty and unknown families, adopted events,
duplicates, JSON texts with -0, big integers, NaN and bad syntax. Each history is folded in
batches by both cores into real SQLite views, the caches sometimes dropped between batches (so
documents are read back from the views); every batch's index entries and documents (as
keel.views.docjson writes them) must be equal, and where the Python evolve raises, so does the
native one.
"""

from __future__ import annotations

import itertools
import json
import struct
from pathlib import Path
from typing import Any

import keel_fold
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore
from keel.codec import Codec
from keel.log.port import LogRecord
from keel.views import docjson
from keel.views.port import Put
from keel.views.sqlite import SqliteViewStore
from tests.unit.test_native_fold import CODEC, STRATEGIES, VERSIONS

pytestmark = pytest.mark.unit

SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
T0 = 1_700_000_000_000

# Small pools, so events of a history meet in the same documents.
IDS = ["a", "b", "c", ""]
EVENT_IDS = ["e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"]
POOLS: dict[str, list[Any]] = {
    "family": ["churn", "fraud", "", "f\u00e9\u0000"],
    "env": ["prod", "staging"],
    "model_id": IDS,
    "dataset_id": IDS,
    "artifact_id": IDS,
    "feature_set_id": IDS,
    "pending_event_id": [*EVENT_IDS[:3], None, ""],
    "verdict": ["approved", "rejected", "declined"],
    "rule": ["range", "type"],
    "kind": ["model", "dataset", ""],
    "parents": [(), ("a",), ("a", "b")],
    "window_end": ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00"],
}
TIMES = [T0, T0 + 1, T0 + 123, T0 - 10_000_000, 0, 2**43, 253402300799999, -5]
RECORDED = [0, T0, T0 + 1, T0 + 400_000, T0 + 10**9, 2**43, -1]
# params_json / stats_json: JSON texts orjson reads alike and not (then json.loads decides)
JSON_EDGES = [
    "{}",
    '{"lr": 0.1, "n": 3}',
    '{"a": -0}',
    '{"a": -0.0, "b": [1e16, 1E5, 1.50]}',
    '{"big": 18446744073709551616, "neg": -9223372036854775809, "u": 18446744073709551615}',
    '{"x": NaN}',
    '{"x": 1e400}',
    '{"k": 1, "k": 2}',
    '["\\u0000", "\\ud83d\\ude00"]',
    "[1,2",
    "3",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=8,
)
json_texts = st.sampled_from(JSON_EDGES) | json_values.map(json.dumps)


@st.composite
def history_event(draw: st.DrawFn) -> tuple[bytes, int, bool]:
    """(an encoded event steered into the pools, its recorded ms, adopted)."""
    version = draw(st.sampled_from(VERSIONS))
    record = dict(draw(STRATEGIES[version.fingerprint]))
    env = dict(record["envelope"])
    env["event_id"] = draw(st.sampled_from(EVENT_IDS))
    env["occurred_at"] = draw(st.sampled_from(TIMES))
    env["causation_id"] = draw(st.sampled_from([None, "", "e1", "a"]))
    env["actor"] = draw(st.sampled_from(["ann", "bob"]))
    record["envelope"] = env
    for name, value in list(record.items()):
        pool = POOLS.get(name)
        if pool is not None:
            # a pooled value of the field's kind (a string, an array; None where null was drawn)
            fits = [p for p in pool if type(p) is type(value) or (value is None and p is None)]
            if isinstance(value, list):
                fits = [list(p) for p in pool if isinstance(p, tuple)]
            if value is None:
                fits += [p for p in pool if isinstance(p, str)]
            if fits:
                record[name] = draw(st.sampled_from(fits))
        elif name in ("params_json", "stats_json"):
            record[name] = draw(json_texts)
    data = Codec.encode_with(version, record)
    return data, draw(st.sampled_from(RECORDED)), draw(st.booleans())


def _records(items: list[tuple[bytes, int, bool]]) -> list[tuple[LogRecord, bool]]:
    return [
        (LogRecord("models", 0, i, "k", rec, data, None, recorded_ms=rec), adopted)
        for i, (data, rec, adopted) in enumerate(items)
    ]


def _fold(core: foldcore.PythonCore, views: SqliteViewStore, batch: list[Any]) -> Any:
    """One batch through a core as the projector folds it: (index entries, documents) as
    stored, or the exception the fold raised."""
    decoded = core.decode_fold([r for r, _ in batch])
    adopted = {r.offset: a for r, a in batch}
    seen: set[str] = set()
    apply = []
    for d in decoded:
        if d[2] not in seen:
            seen.add(d[2])
            apply.append((d, adopted[d[0].offset]))
    try:
        index, puts = core.evolve(decoded, apply, views)
        # inside: the Python fold's documents are encoded only here (an integer past 64 bits
        # fails here, where the native fold hands that event to Python, which fails in evolve)
        views.apply([*index, *puts])
    except Exception as e:  # the specification's own failure: the native fold must raise too
        return type(e)
    entries = [(i.index, i.member, struct.pack("<d", i.score)) for i in index]
    return entries, [(p.key, docjson.dumps(p.doc)) for p in puts]


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteViewStore, SqliteViewStore]:
    root = tmp_path_factory.mktemp("native-evolve")
    return SqliteViewStore(Path(root / "python.db")), SqliteViewStore(Path(root / "native.db"))


@SETTINGS
@given(
    st.lists(history_event(), min_size=1, max_size=24),
    st.lists(st.integers(1, 8), min_size=1, max_size=6),
    st.lists(st.booleans(), min_size=1, max_size=6),
)
def test_native_evolve_writes_what_the_python_evolve_writes(
    stores: tuple[SqliteViewStore, SqliteViewStore],
    items: list[tuple[bytes, int, bool]],
    sizes: list[int],
    forget: list[bool],
) -> None:
    python_views, native_views = stores
    python_views.clear()
    native_views.clear()
    python = foldcore.PythonCore(CODEC, signing.Trust())
    native = foldcore.NativeCore(CODEC, signing.Trust())
    records = _records(items)
    start = 0
    for size, drop in zip(itertools.cycle(sizes), itertools.cycle(forget), strict=False):
        batch = records[start : start + size]
        if not batch:
            break
        start += size
        want = _fold(python, python_views, batch)
        got = _fold(native, native_views, batch)
        assert got == want
        if isinstance(want, type):
            break  # both raised: the fold stops there
        assert native.cached() == python.cached()
        if drop:  # the next batch reads its documents back from the views
            python.forget()
            native.forget()
    assert native_views.snapshot() == python_views.snapshot()


# Documents already in the views, of shapes a fold mostly meets only there: the native fold holds
# what it loads as the stored canonical JSON (ViewStore.get_many_raw) and parses a document
# only where an event reads it, so empty, odd and unchanged documents must come out as the
# Python fold's (decision 0027).
SEEDED = st.dictionaries(
    st.sampled_from(
        [
            "projector:stats",
            "meta:families",
            "quarantine:churn",
            "model:a",
            "pending:e1",
            "open:churn:prod",
            "closed:churn:prod:e1",
            "trust:resets",
            "dataset:a",
        ]
    ),
    st.sampled_from(
        [
            {},
            {"applied": 3, "by_type": {"ModelTrained": 2}},
            {"families": ["churn", "zeta"]},
            {"families": []},
            {"records_in": 2, "by_rule": {"range": 1}},
            {"evaluations": [], "x": -0.0, "y": 1.5e300},
            {"pending": ["e1"], "reviews": []},
            {"closed": True},
            {"resets": []},
            {"x": "f\u00e9\u0000"},
        ]
    ),
    max_size=5,
)


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(SEEDED, st.lists(history_event(), min_size=1, max_size=12), st.integers(1, 6))
def test_native_evolve_over_stored_documents_writes_what_the_python_evolve_writes(
    stores: tuple[SqliteViewStore, SqliteViewStore],
    seeded: dict[str, Any],
    items: list[tuple[bytes, int, bool]],
    size: int,
) -> None:
    python_views, native_views = stores
    for views in stores:
        views.clear()
        views.apply([Put(k, doc) for k, doc in seeded.items()])
    python = foldcore.PythonCore(CODEC, signing.Trust())
    native = foldcore.NativeCore(CODEC, signing.Trust())
    records = _records(items)
    for start in range(0, len(records), size):
        batch = records[start : start + size]
        want = _fold(python, python_views, batch)
        assert _fold(native, native_views, batch) == want
        if isinstance(want, type):
            break
    assert native_views.snapshot() == python_views.snapshot()


@pytest.mark.parametrize(
    "x",
    [1e16, 1e15, 1e-5, 1e-6, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 18129837992220.812,
     2036832066617673.2, 1e21, 123456789.0, 2.5e-5, float(2**63)],
)  # fmt: skip
def test_floats_are_written_as_orjson_writes_them(x: float) -> None:
    assert keel_fold.canonical_float(x) == orjson.dumps(x).decode()


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
@example(18129837992220.812)  # Rust's shortest digits are not always the nearest
def test_any_float_is_written_as_orjson_writes_it(x: float) -> None:
    assert keel_fold.canonical_float(x) == orjson.dumps(x).decode()


@settings(max_examples=500, deadline=None)
@given(json_texts)
def test_json_texts_read_as_orjson_reads_them_or_go_to_python(text: str) -> None:
    native = keel_fold.canonical_json(text)
    if native is None:
        return  # the Python evolve reads it (orjson, else json.loads)
    assert native == docjson.dumps(orjson.loads(text))


def test_put_carries_canonical_json_as_is() -> None:
    data = b'{"a":1}'
    assert docjson.dumps(Put("k", data).doc) is data  # type: ignore[arg-type]
