"""Verify's scan holds nothing per log record once a batch is checked (issue 37, decision 0039):
no LogRecord and no event kept for each record (a tuple and a live record per event cost ~2 us
an event at 1M events: the dict, the memory and the cycle collector's pass over them after the
scan), only each artifact's recorded (digest, size). Proofs still get every event's position
(keep_leaves, as a review pack asks)."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from bench.bench_projector import fill, signer_in
from keel.audit import verify as vf
from keel.codec import Codec
from keel.events import generated as g
from keel.log.port import LogRecord
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Trust
from keel.topics import EVENT_TOPICS

pytestmark = pytest.mark.unit
N = 2000  # ArtifactRecorded and ModelDeployed, N/2 each


def _alive(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is kind)


def test_scan_keeps_no_record_or_event_per_log_record(tmp_path: Path) -> None:
    codec = Codec(load_registry())
    signer = signer_in(tmp_path)
    log = SqliteEventLog(tmp_path / "log.db")
    fill(log, codec, N, signer)
    trust = Trust(signer.trust.keys.values(), signer.trust.roles)  # cold, as a verifier's
    before = _alive(LogRecord), _alive(g.ArtifactRecorded)
    problems: list[vf.Problem] = []
    scan = vf.scan_log(log.read(list(EVENT_TOPICS)), codec, trust, problems, fold="python")
    assert problems == [] and scan.records == scan.signed == N
    assert len(scan.recorded) == N // 2
    after = _alive(LogRecord), _alive(g.ArtifactRecorded)
    # a batch's worth at most may linger until the next allocation; not one per record
    assert after[0] - before[0] < N // 2, f"{after[0] - before[0]} LogRecords kept by the scan"
    assert after[1] - before[1] < N // 4, f"{after[1] - before[1]} ArtifactRecorded kept"
    assert scan.positions == {}
    # the catalog check reads the recorded digests and sizes as before
    aid, stated = next(iter(scan.recorded.items()))
    vf.check_catalog({aid: stated}, {aid: stated[0]}, scan, problems)
    assert [p.kind for p in problems] == ["uncatalogued"] * (N // 2 - 1)
    # proofs need every event's first position: kept with the leaves
    proofs = vf.scan_log(log.read(list(EVENT_TOPICS)), codec, trust, [], keep_leaves=True)
    assert len(proofs.positions) == N and proofs.recorded == scan.recorded
    log.close()
