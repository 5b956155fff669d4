"""Checkpoint notes (C2SP signed-note shape) and the pure checks `verify` runs on them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit import verify as vf
from keel.signing import Signer, create_key, load_private, load_trust

pytestmark = pytest.mark.unit
AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    create_key("audit", tmp_path / "keys.toml", tmp_path / "private")
    return Signer(load_trust(tmp_path / "keys.toml"), load_private(tmp_path / "private"))


def scan_of(n: int) -> vf.LogScan:
    scan = vf.LogScan()
    scan.leaves[("registry", 0)] = [merkle.leaf_hash(b"e%d" % i) for i in range(n)]
    scan.records = n
    return scan


def note_for(signer: Signer, leaves: list[bytes]) -> str:
    return cp.sign(cp.body("registry", 0, len(leaves), merkle.root(leaves), AT), signer)


def test_a_note_round_trips_and_checks(signer: Signer) -> None:
    scan = scan_of(10)
    text = note_for(signer, scan.leaves[("registry", 0)])
    note = cp.parse(text)
    assert (note.origin, note.size, note.time) == (
        "keel/registry/0",
        10,
        "2026-01-02T03:04:05.000Z",
    )
    assert note.tree == ("registry", 0)
    assert cp.check(note, signer.trust) is None
    assert text.splitlines()[5].startswith("\u2014 keel-audit-")


def test_tampered_notes_are_named(signer: Signer) -> None:
    text = note_for(signer, scan_of(10).leaves[("registry", 0)])
    bigger = text.replace("\n10\n", "\n11\n")
    assert "altered" in str(cp.check(cp.parse(bigger), signer.trust))
    with pytest.raises(ValueError):
        cp.parse(text.replace("\n\n", "\n"))
    stranger = load_trust(Path("/nonexistent/keys.toml"))
    assert "not signed by any audit key" in str(cp.check(cp.parse(text), stranger))


def test_truncation_and_rewrites_against_a_checkpoint(signer: Signer) -> None:
    full = scan_of(10)
    text = note_for(signer, full.leaves[("registry", 0)])
    problems: list[vf.Problem] = []
    vf.check_checkpoints([("w", text)], full, signer.trust, problems)
    assert problems == []
    grown = scan_of(15)  # appended since: consistent
    vf.check_checkpoints([("w", text)], grown, signer.trust, problems)
    assert problems == []
    vf.check_checkpoints([("w", text)], scan_of(9), signer.trust, problems)
    assert [p.kind for p in problems] == ["truncated", "none"]  # and nothing else covers it
    rewritten = scan_of(15)
    rewritten.leaves[("registry", 0)][3] = merkle.leaf_hash(b"forged")
    problems.clear()
    vf.check_checkpoints([("w", text)], rewritten, signer.trust, problems)
    assert [p.kind for p in problems] == ["rewritten", "none"]


def test_catalog_and_views_checks() -> None:
    from keel.events import generated as g
    from tests.faults.test_projector_kill import events

    scan = vf.LogScan()
    rec = next(e for e in events(1) if isinstance(e, g.ArtifactRecorded))
    scan.recorded[rec.artifact_id] = (rec.digest, rec.size)
    problems: list[vf.Problem] = []
    ok = {rec.artifact_id: (rec.digest, rec.size)}
    vf.check_catalog(ok, {rec.artifact_id: rec.digest}, scan, problems)
    assert problems == []
    vf.check_catalog({**ok, "x" * 64: ("d", 1)}, {rec.artifact_id: "e" * 64}, scan, problems)
    assert sorted(p.kind for p in problems) == ["bytes-mismatch", "unrecorded"]
    problems.clear()
    vf.check_catalog({}, {}, scan, problems)
    assert [p.kind for p in problems] == ["uncatalogued"]
    problems.clear()
    live = {"docs": {"a": {"x": 1}, "b": {}}, "indexes": {}, "sets": {}}
    fresh = {"docs": {"a": {"x": 2}, "c": {}}, "indexes": {}, "sets": {}}
    assert vf.check_views(live, fresh, problems) == 3
    assert sorted(p.kind for p in problems) == ["altered", "extra", "missing"]
