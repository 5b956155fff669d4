"""The ViewStore contract, written once; `make_views` opens the same store again on each call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from keel.views.port import (
    IndexAdd,
    IndexRemove,
    Put,
    Remove,
    SetAdd,
    SetRemove,
    Tracking,
    ViewStore,
)

MakeViews = Callable[[], ViewStore]


@pytest.mark.contract
class ViewStoreContract:
    def test_documents_by_key(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([Put("a", {"x": 1, "nested": {"y": [1, 2]}}), Put("b", {"x": 2})])
        assert v.get("a") == {"x": 1, "nested": {"y": [1, 2]}}
        assert v.get_many(["b", "zz", "a"]) == [{"x": 2}, None, {"x": 1, "nested": {"y": [1, 2]}}]
        # as stored: canonical JSON (sorted keys, compact), the bytes docjson.dumps gives
        assert v.get_many_raw(["b", "zz", "a"]) == [
            b'{"x":2}',
            None,
            b'{"nested":{"y":[1,2]},"x":1}',
        ]
        assert v.get_many_raw([]) == []
        v.apply([Put("a", {"x": 3}), Remove("b")])
        assert v.get("a") == {"x": 3} and v.get("b") is None

    def test_updates_apply_in_order(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([Remove("k"), Put("k", {"v": 1}), Put("j", {"v": 1}), Remove("j")])
        assert v.get("k") == {"v": 1} and v.get("j") is None

    def test_time_ordered_index(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([IndexAdd("serving:prod", f"m{i}", 1000.0 * i) for i in range(1, 11)])
        assert v.index_floor("serving:prod", 3500) == ("m3", 3000.0)
        assert v.index_floor("serving:prod", 3000) == ("m3", 3000.0)
        assert v.index_floor("serving:prod", 999) is None
        assert v.index_around("serving:prod", 3500) == (("m3", 3000.0), ("m4", 4000.0))
        assert v.index_around("serving:prod", 3000) == (("m3", 3000.0), ("m4", 4000.0))
        assert v.index_around("serving:prod", 999) == (None, ("m1", 1000.0))
        assert v.index_around("serving:prod", 1e12) == (("m10", 10000.0), None)
        assert v.index_around("nothing", 5) == (None, None)
        v.apply([Put("dep:m3", {"n": 3}), Put("dep:x@m4", {"not": "this key"})])
        assert v.index_around_docs("serving:prod", 3500, "dep:") == (
            ("m3", 3000.0),
            ("m4", 4000.0),
            [{"n": 3}, None],
        )
        # a member may lead with an ordering prefix: its document key follows the last "@"
        # (keel.views.port.member_key), in both adapters alike
        v.apply([IndexAdd("stamped", "0123.0007@m4", 5.0), Put("dep:m4", {"n": 4})])
        assert v.index_around_docs("stamped", 4.5, "dep:") == (
            None,
            ("0123.0007@m4", 5.0),
            [None, {"n": 4}],
        )
        assert v.index_around_docs("stamped", float("inf"), "dep:")[2] == [{"n": 4}, None]
        # equal scores are ordered by the member's bytes, the same in every adapter: what
        # keeps deployments at one business time in recorded order
        v.apply([IndexAdd("ties", m, 7.0) for m in ("0002@b", "0010@a", "0001@c", "0003@z")])
        assert [m for m, _ in v.index_range("ties")] == ["0001@c", "0002@b", "0003@z", "0010@a"]
        assert v.index_around_docs("ties", 7.0, "dep:")[0] == ("0010@a", 7.0)
        assert v.index_floor("ties", 7.0) == ("0010@a", 7.0)
        assert [m for m, _ in v.index_range("ties", limit=2, reverse=True)] == ["0010@a", "0003@z"]
        assert v.index_around_docs("nothing", 5, "dep:") == (None, None, [None, None])
        assert [m for m, _ in v.index_range("serving:prod", 2000, 5000)] == ["m2", "m3", "m4", "m5"]
        page2 = v.index_range("serving:prod", offset=3, limit=3)
        assert [m for m, _ in page2] == ["m4", "m5", "m6"]
        assert [m for m, _ in v.index_range("serving:prod", limit=2, reverse=True)] == ["m10", "m9"]
        v.apply([IndexRemove("serving:prod", "m10")])
        assert v.index_floor("serving:prod", 1e12) == ("m9", 9000.0)

    def test_sets_add_in_bulk_and_answer_membership_in_bulk(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([SetAdd("seen", ("e1", "e2")), Put("a", {"n": 1}), SetAdd("seen", ("e2", "e3"))])
        v.apply([SetAdd("other", ("e9",)), SetAdd("seen", ())])
        assert v.contains("seen", ["e3", "e9", "e1", "zz"]) == [True, False, True, False]
        assert v.contains("nothing", ["e1"]) == [False] and v.contains("seen", []) == []
        v.apply([SetAdd("other", ("e8",)), SetRemove("other", ("e8", "zz")), SetRemove("x", ())])
        assert v.members("other") == ["e9"] and v.members("nothing") == []
        many = [f"m{i}" for i in range(1200)]  # more than one statement's worth of parameters
        v.apply([SetAdd("big", tuple(many))])
        assert all(v.contains("big", many)) and v.contains("big", ["m1200"]) == [False]
        snap = v.snapshot()
        assert snap["sets"]["seen"] == {"e1", "e2", "e3"} and snap["sets"]["other"] == {"e9"}
        v.clear()
        assert v.contains("seen", ["e1"]) == [False] and v.snapshot()["sets"] == {}

    def test_tracking_is_written_with_the_updates(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([Put("a", {"n": 1})], Tracking("proj", {("ingest", 0): 10, ("registry", 2): 4}))
        v.apply([Put("a", {"n": 2})], Tracking("proj", {("ingest", 0): 11}))
        assert v.tracking("proj") == {("ingest", 0): 11, ("registry", 2): 4}
        assert v.tracking("other") == {}

    def test_a_failed_batch_leaves_nothing_behind(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([Put("a", {"n": 1})], Tracking("proj", {("t", 0): 1}))
        with pytest.raises((TypeError, ValueError)):
            v.apply(
                [SetAdd("s", ("x",)), Put("a", {"n": 2}), Put("b", {"bad": object()})],
                Tracking("proj", {("t", 0): 2}),
            )
        assert v.get("a") == {"n": 1} and v.get("b") is None
        assert v.contains("s", ["x"]) == [False]
        assert v.tracking("proj") == {("t", 0): 1}

    def test_views_survive_reopen_and_clear_drops_them(self, make_views: MakeViews) -> None:
        v = make_views()
        v.apply([Put("a", {"n": 1}), IndexAdd("i", "m", 1.0)], Tracking("proj", {("t", 0): 5}))
        v.close()
        again = make_views()
        assert again.get("a") == {"n": 1} and again.tracking("proj") == {("t", 0): 5}
        again.clear()
        assert (
            again.get("a") is None
            and again.index_floor("i", 10) is None
            and again.tracking("proj") == {}
        )
