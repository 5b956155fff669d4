"""Decision 0034: `keel audit rebuild` of SQLite views folds into views held in memory (spilled
into a file beside them past KEEL_REBUILD_MEMORY_MB) and writes them over the views in one
transaction once the fold is done. Killed mid-way (SIGKILL, a real process), the views are as
they were: never cleared, never half folded (before, the rebuild cleared them first and folded
in place, so a killed one left them half). Killed twice: mid-fold with a tiny budget (its spill
file written), and in the middle of the final write (the views' WAL growing, not committed).
The next rebuild removes the killed one's file and completes with the same answers."""

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


def wal_size(views: Path) -> int:
    wal = views.with_name(views.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def under_way(views: Path, folded: int, when: str) -> bool:
    """mid-fold: the rebuild has folded a batch, into the spill file beside the views (a few
    MB written); final-write: it is writing the views' pages into their WAL (emptied before),
    its transaction not committed. Either, as rebuilds did before: into the views themselves
    (their positions went back)."""
    if when == "mid-fold":
        fresh = list(views.parent.glob(f"{views.name}.rebuild-*"))
        if any(f.stat().st_size > 4_000_000 for f in fresh):
            return True
    elif wal_size(views) > 4_000_000:
        return True
    return positions(views) < folded


@pytest.mark.parametrize("when", ["mid-fold", "final-write"])
def test_a_killed_rebuild_leaves_the_views_whole_and_the_next_completes(
    tmp_path: Path, when: str
) -> None:
    make_home(tmp_path, EVENTS, Codec(load_registry()))
    env = home_env(tmp_path)
    views = tmp_path / "home" / "views.db"
    db = sqlite3.connect(views)  # the WAL emptied: what grows in it now is the rebuild's write
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    assert wal_size(views) == 0
    before, folded = content(views), positions(views)
    store = SqliteViewStore(views)
    shown = rb.shown(store)
    store.close()

    killed = dict(env)
    if when == "mid-fold":
        killed["KEEL_REBUILD_MEMORY_MB"] = "1"  # spilled at every batch: a file to watch
    proc = subprocess.Popen(
        [KEEL, "audit", "rebuild", "--json"],
        env=killed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        while not under_way(views, folded, when):
            assert proc.poll() is None, f"the rebuild ended before it was killed: {proc.stderr}"
            time.sleep(0.002)
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
