"""ServingStatsRecorded folded by the native evolve itself (keel_fold, decision 0027).

projection.py reads its stats with the standard library's `json.loads` (not orjson, as other
JSON texts) and scores its window by `datetime.fromisoformat(window_end).timestamp() * 1000`;
keel_fold reproduces both (stdtext.rs) and hands Python what it cannot be sure of (a naive
time, read in the machine's zone; integers past 64 bits; NaN). Windows ending at any aware
time, written as Python and other writers write ISO times (seconds, milli- or microseconds,
`Z` or an offset), with stats of every JSON kind: the native views are the Python views'
bytes, and the native core folded every event itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keel import signing
from keel.audit import foldcore
from keel.events import envelope
from keel.events import generated as g
from keel.views.sqlite import SqliteViewStore
from tests.unit.test_native_evolve import _fold, _records
from tests.unit.test_native_fold import CODEC

pytestmark = pytest.mark.unit

stats = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=3), c, max_size=3),
    max_leaves=8,
)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))
ends = st.datetimes(
    min_value=datetime(1700, 1, 1), max_value=datetime(2200, 12, 31), timezones=offsets
)


@st.composite
def window_end(draw: st.DrawFn) -> str:
    at = draw(ends)
    text = at.isoformat(timespec=draw(st.sampled_from(["seconds", "milliseconds", "auto"])))
    if at.utcoffset() == timedelta(0) and draw(st.booleans()):
        text = text.replace("+00:00", "Z")
    return text


def _stats_event(i: int, end: str, body: Any) -> bytes:
    e = g.ServingStatsRecorded(
        envelope=envelope("ServingStatsRecorded", subject="fam", service="serve",
                          code_version="c", actor="serve", correlation_id="r",
                          occurred_at=datetime(2024, 1, 1, tzinfo=UTC), event_id=f"s{i}"),
        family="fam", env="prod", model_id="m", window_start="2024-01-01T00:00:00+00:00",
        window_end=end, requests=i, stats_json=json.dumps(body),
    )  # fmt: skip
    return CODEC.encode(e.EVENT_TYPE, e.to_avro())


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqliteViewStore, SqliteViewStore]:
    root = tmp_path_factory.mktemp("native-serving-stats")
    return SqliteViewStore(Path(root / "python.db")), SqliteViewStore(Path(root / "native.db"))


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(window_end(), stats), min_size=1, max_size=6))
def test_serving_stats_fold_natively_to_the_python_bytes(
    stores: tuple[SqliteViewStore, SqliteViewStore], windows: list[tuple[str, Any]]
) -> None:
    python_views, native_views = stores
    python_views.clear()
    native_views.clear()
    items = [(_stats_event(i, end, body), 0, False) for i, (end, body) in enumerate(windows)]
    python = foldcore.PythonCore(CODEC, signing.Trust())
    native = foldcore.NativeCore(CODEC, signing.Trust())
    want = _fold(python, python_views, _records(items))
    assert _fold(native, native_views, _records(items)) == want
    assert native_views.snapshot() == python_views.snapshot()
    assert native._fold.folded == len(items)  # none handed to the Python evolve
