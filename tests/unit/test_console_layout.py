"""The console's layouts are plain functions: checked here without a server or a browser."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

from keel_services.audit.console import pages


def node(i: int, depth: int, kind: str = "dataset", via: str | None = "root") -> SimpleNamespace:
    return SimpleNamespace(id=f"{i:064x}", kind=kind, depth=depth, via=via)


def test_a_few_hundred_artifacts_stay_readable() -> None:
    root = SimpleNamespace(id="root", kind="model", depth=0, via=None)
    nodes = [root] + [node(i, -1) for i in range(300)] + [node(1000 + i, 1, "x") for i in range(5)]
    g = pages.lineage_graph(nodes, "root")
    boxes = {(n["x"], n["y"]) for n in g["nodes"]}
    assert len(g["nodes"]) == len(boxes) == 306  # no two artifacts drawn on each other
    assert g["height"] <= 40 + pages.ROW_H * pages.LINEAGE_ROWS  # wrapped, not one long column
    xs = sorted({n["x"] for n in g["nodes"] if n["depth"] == -1})
    assert len(xs) == 300 // pages.LINEAGE_ROWS + 1
    # ancestors left of the root, descendants right of it
    root_x = next(n["x"] for n in g["nodes"] if n["id"] == "root")
    assert max(xs) < root_x < min(n["x"] for n in g["nodes"] if n["depth"] == 1)
    assert len(g["edges"]) == 305


def test_an_artifact_reached_twice_is_drawn_once() -> None:
    root = SimpleNamespace(id="root", kind="model", depth=0, via=None)
    g = pages.lineage_graph([root, node(1, -1), node(1, -2, via=f"{1:064x}")], "root")
    assert [n["id"] for n in g["nodes"]].count(f"{1:064x}") == 1


def test_timeline_ticks_fit_the_span() -> None:
    day = datetime(2025, 1, 1, tzinfo=UTC)
    for end in (datetime(2025, 1, 20, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)):
        ticks = pages.ticks(day, end)
        assert 3 <= len(ticks) <= 14 and all(day < t < end for t, _ in ticks)
    years = pages.ticks(datetime(2010, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC))
    assert 3 <= len(years) <= 14
