"""Verify's scan keeps each tree's roots at the watched sizes, not every leaf (issue 37): those
roots, the ones fill_roots reads again for a size found only after the scan (an adoption the
trail records but keys.toml lacks) and the ones kept leaves give are the same, on both cores."""

from __future__ import annotations

import pytest

from keel.audit import merkle
from keel.audit import trees as tr
from keel.audit import verify as vf
from keel.audit.foldcore import native_available
from keel.codec import Codec
from keel.events import encode_event
from keel.log.port import LogRecord
from keel.schemas.registry import load_registry
from keel.signing import Trust
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.unit
TP = ("deployments", 0)


def _records(n: int) -> list[LogRecord]:
    codec = Codec(load_registry())
    values = [encode_event(codec, e) for i in range(n // 2) for e in events(i)]
    return [
        LogRecord(TP[0], TP[1], 10 + i, "k", 1000 + i, v, None, 2000 + i)
        for i, v in enumerate(values)
    ]


def test_roots_watched_filled_in_and_from_leaves_agree() -> None:
    records, codec = _records(24), Codec(load_registry())
    leaves = [tr.leaf_at(r, i, 5) for i, r in enumerate(records)]  # format 2 from leaf 5
    wanted = {(TP, 3), (TP, 7), (TP, 24)}
    expected = {(TP, n): merkle.root(leaves[:n]) for _, n in wanted}
    cores = ["python", "native"] if native_available() else ["python"]
    for fold in cores:
        watched = vf.scan_log(records, codec, Trust(), [], None, {TP: 5}, watch=wanted, fold=fold)
        assert {k: watched.roots[k] for k in wanted} == expected, fold
        assert watched.sizes() == {TP: 24} and not watched.leaves
        bare = vf.scan_log(records, codec, Trust(), [], None, {TP: 5}, fold=fold)
        # the whole tree's root comes from its right edge; smaller sizes were not watched
        assert bare.unanswered(wanted) == {(TP, 3), (TP, 7)}
        vf.fill_roots(records, bare, bare.unanswered(wanted), {TP: 5})
        assert not bare.unanswered(wanted)
        assert vf._roots_at(bare, wanted) == expected
        kept = vf.scan_log(records, codec, Trust(), [], None, {TP: 5}, fold=fold, keep_leaves=True)
        assert kept.leaves[TP] == leaves and vf._roots_at(kept, wanted) == expected
