"""The native evolve folds views shape 5 itself (decision 0035 in keel_fold, decision 0027).

test_native_evolve draws every type and version with values chosen to hit the odd cases, so
its histories seldom hold two records of one document whose log order differs from the read
order; a port that kept evaluations, reviews or the waiting list in read order passed it. Here
every history is of the types shape 5 changed, steered into a few documents (one model, one
dataset, two pending promotions, one waiting list per env), their recorded times going back
and forth while the offsets grow: the log's order (recorded time, position, event ID) is not
the read order. Folded in batches by both cores into real SQLite views, each batch's index
entries and documents must be equal, and the native core must have folded every event itself
(before the port, these types were handed to the Python evolve).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore
from keel.codec import Codec
from keel.views.sqlite import SqliteViewStore
from tests.unit.test_native_evolve import _fold, _records
from tests.unit.test_native_fold import CODEC, STRATEGIES, VERSIONS

pytestmark = pytest.mark.unit

# The types shape 5 changed, and ServingStatsRecorded (the last type ported: its stats and
# window are read by the standard library's readers, so the pools hold texts of both kinds)
DRAWN = [
    "ArtifactRecorded",
    "DatasetIngested",
    "FeaturesBuilt",
    "ModelTrained",
    "ModelEvaluated",
    "PromotionPending",
    "PromotionReviewed",
    "PromotionRejected",
    "ModelPromoted",
    "TrustReset",
    "ServingStatsRecorded",
]
LATEST = {v.name: v for v in VERSIONS if v.name in DRAWN}  # VERSIONS: oldest first
T0 = 1_700_000_000_000
# The same documents for every event: what decides them is the log's order among records
POOLS: dict[str, list[Any]] = {
    "family": ["churn"],
    "env": ["prod", "staging"],
    "model_id": ["a"],
    "dataset_id": ["a"],
    "artifact_id": ["a"],
    "feature_set_id": ["a"],
    "pending_event_id": ["e0", "e1"],  # the first two events' IDs: often PromotionPendings
    "verdict": ["approved", "rejected", "declined"],
    "kind": ["model", ""],
    "parents": [[], ["b"]],
    "params_json": ["{}", '{"lr": 0.1}'],
    "records_in": [1, 2],
    "accepted": [0, 1],
    "window_end": [
        "2024-01-01T00:00:00+00:00",
        "2024-01-02T00:00:00.5Z",
        "2023-12-31T23:59:59.123456-05:30",
        "2024-02-29T12:00:00.120+14:00",
    ],
    "stats_json": [
        "{}",
        '{"x": {"mean": 0.5, "p50": 1e16, "n": 3}, "y": null}',
        '[1, 2.5e-7, "\\u00e9\\u0000", -7, 18446744073709551615]',
        '{"k": 1, "k": 2, "z": [true, false, 0.1]}',
    ],
}


@st.composite
def history(draw: st.DrawFn) -> list[tuple[bytes, int, bool]]:
    """(encoded event, recorded ms, adopted) each; unique event IDs e0, e1, ..."""
    out = []
    # a few types a history, so that records of one type often meet in their documents
    types = draw(st.lists(st.sampled_from(DRAWN), min_size=1, max_size=3, unique=True))
    for i in range(draw(st.integers(2, 14))):
        version = LATEST[draw(st.sampled_from(types))]
        record = dict(draw(STRATEGIES[version.fingerprint]))
        env = dict(record["envelope"])
        env["event_id"] = f"e{i}"
        env["occurred_at"] = T0 + draw(st.integers(0, 3))
        env["causation_id"] = None
        env["actor"] = draw(st.sampled_from(["ann", "bob"]))
        record["envelope"] = env
        for name in record:
            if name in POOLS:
                record[name] = draw(st.sampled_from(POOLS[name]))
        # recorded back and forth (0: not known, its business time) while positions grow
        recorded = draw(st.sampled_from([0, T0, T0 + 1000, T0 + 2000]))
        out.append((Codec.encode_with(version, record), recorded, draw(st.booleans())))
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteViewStore, SqliteViewStore]:
    root = tmp_path_factory.mktemp("native-evolve-order")
    return SqliteViewStore(Path(root / "python.db")), SqliteViewStore(Path(root / "native.db"))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(history(), st.lists(st.integers(1, 5), min_size=1, max_size=4), st.booleans())
def test_native_evolve_folds_shape_5_in_the_logs_order(
    stores: tuple[SqliteViewStore, SqliteViewStore],
    items: list[tuple[bytes, int, bool]],
    sizes: list[int],
    forget: bool,
) -> None:
    python_views, native_views = stores
    python_views.clear()
    native_views.clear()
    python = foldcore.PythonCore(CODEC, signing.Trust())
    native = foldcore.NativeCore(CODEC, signing.Trust())
    records = _records(items)
    start = 0
    for size in itertools.cycle(sizes):
        batch = records[start : start + size]
        if not batch:
            break
        start += size
        want = _fold(python, python_views, batch)
        assert _fold(native, native_views, batch) == want
        if forget:  # the next batch reads its documents back from the views
            python.forget()
            native.forget()
    assert native_views.snapshot() == python_views.snapshot()
    # every event folded by the native evolve, none handed to the Python one
    assert native._fold.folded == len(items)
