"""Decision 0034: `keel audit rebuild` of SQLite views folds into a fresh file beside them and
copies it over them in one transaction once the fold is done. Killed mid-way (SIGKILL, a real
process), the views are as they were: never cleared, never half folded (before, the rebuild
cleared them first and folded in place, so a killed one left them half). The next rebuild
removes the killed one's file and completes with the same answers."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bench.bench_rebuild import KEEL, home_env, make_home
from keel.audit import rebuild as rb
from keel.codec import Codec
from keel.schemas.registry import load_registry
from keel.views.sqlite import SqliteViewStore

pytestmark = [pytest.mark.faults, pytest.mark.integration]

EVENTS = 60_000  # three of a rebuild's batches: the kill lands after the first
_TABLES = {
    "docs": "key",
    "idx": "name, member",
    "sets": "name, member",
    "tracking": "projector, topic, part",
}


def content(views: Path) -> dict[str, str]:
    """Each table's rows, hashed in key order (read through SQLite, WAL included)."""
    db = sqlite3.connect(f"file:{views}?mode=ro", uri=True)
    try:
        out = {}
        for table, order in _TABLES.items():
            h = hashlib.sha256()
            for row in db.execute(f"SELECT * FROM {table} ORDER BY {order}"):
                h.update(repr(row).encode())
            out[table] = h.hexdigest()
        return out
    finally:
        db.close()


def positions(views: Path) -> int:
    db = sqlite3.connect(f"file:{views}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT coalesce(sum(next_offset), 0) FROM tracking").fetchone()[0])
    finally:
        db.close()


def under_way(views: Path, folded: int) -> bool:
    """The rebuild has folded a batch: into a fresh file beside the views (a few MB written),
    or, as rebuilds did before, into the views themselves (their positions went back)."""
    fresh = list(views.parent.glob(f"{views.name}.rebuild-*"))
    if any(f.stat().st_size > 4_000_000 for f in fresh):
        return True
    return positions(views) < folded


def test_a_killed_rebuild_leaves_the_views_whole_and_the_next_completes(tmp_path: Path) -> None:
    make_home(tmp_path, EVENTS, Codec(load_registry()))
    env = home_env(tmp_path)
    views = tmp_path / "home" / "views.db"
    before, folded = content(views), positions(views)
    store = SqliteViewStore(views)
    shown = rb.shown(store)
    store.close()

    proc = subprocess.Popen(
        [KEEL, "audit", "rebuild", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not under_way(views, folded):
            assert proc.poll() is None, f"the rebuild ended before it was killed: {proc.stderr}"
            time.sleep(0.01)
        assert proc.poll() is None, "the rebuild ended before it was killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()

    assert content(views) == before  # the views as they were: not cleared, not half folded

    out = subprocess.run(
        [KEEL, "audit", "rebuild", "--json"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["applied"] >= EVENTS and doc["rejected"] == 0 and not doc["gone"], doc
    assert doc["after"] == doc["before"] == rb.counts(shown)
    store = SqliteViewStore(views)
    assert rb.shown(store) == shown
    store.close()
    assert not list(views.parent.glob(f"{views.name}.rebuild-*"))  # the killed one's file too
