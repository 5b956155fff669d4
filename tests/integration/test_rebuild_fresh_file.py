"""Decision 0034: `keel audit rebuild` of SQLite views folds into views held in memory
(20000-event batches) and writes them over the views in one transaction, in key order; past its
memory budget (KEEL_REBUILD_MEMORY_MB) what is held spills into a file beside the views and the
fold goes on. Either way the views come out as a fold in place gives them (the projector's own
batches, the views' own pragmas), byte for byte, and a reader that had the views open before
(another process's connection, as the audit API's) reads the rebuilt views after."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from bench.bench_projector import load_signer
from bench.bench_rebuild import KEEL, home_env, make_home
from keel.audit.anchors import NOTES
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import Trust
from keel.views.port import Put
from keel.views.sqlite import SqliteViewStore

pytestmark = pytest.mark.integration

EVENTS = 45_000  # three of a rebuild's batches, nine of the projector's


def raw(views: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows in key order, as stored (documents' bytes, scores' type)."""
    db = sqlite3.connect(f"file:{views}?mode=ro", uri=True)
    try:
        return {
            t: db.execute(f"SELECT * FROM {t} ORDER BY {o}").fetchall()
            for t, o in (("docs", "key"), ("idx", "name, member"), ("sets", "name, member"))
        }
    finally:
        db.close()


# None: the default budget, held in memory; "1": 1 MiB, spilled at every batch (and at the end)
@pytest.mark.parametrize("budget_mb", [None, "1"], ids=["in-memory", "spilled"])
def test_a_rebuild_gives_the_views_a_fold_in_place_gives_and_open_readers_see_them(
    tmp_path: Path, budget_mb: str | None
) -> None:
    codec = Codec(load_registry())
    make_home(tmp_path, EVENTS, codec)
    views_path = tmp_path / "home" / "views.db"
    reader = SqliteViewStore(views_path)  # open before the rebuild, kept open across it
    reader.apply([Put("tampered", {"by": "someone"})])  # something only the old views hold
    assert reader.get("tampered") is not None

    env = home_env(tmp_path)
    if budget_mb is not None:
        env["KEEL_REBUILD_MEMORY_MB"] = budget_mb
    out = subprocess.run(
        [KEEL, "audit", "rebuild", "--json"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["applied"] >= EVENTS
    # the budget was passed (and the rows came from the spill file) or never
    assert (doc["spills"] >= 3) if budget_mb else (doc["spills"] == 0), doc

    rebuilt = reader.snapshot()  # through the connection opened before
    assert "tampered" not in rebuilt["docs"]
    signer = load_signer(tmp_path)
    in_place = SqliteViewStore(tmp_path / "in-place.db")
    log = SqliteEventLog(tmp_path / "home" / "log.db")
    Projector(
        log, in_place, codec, trust=Trust(signer.trust.keys.values(), signer.trust.roles)
    ).run(checkpoint=False)
    expected = in_place.snapshot()
    # the rebuild signed a checkpoint (the fold in place did not): the rest is equal
    signed = {"audit:checkpointed", NOTES}
    assert {k: v for k, v in rebuilt["docs"].items() if k not in signed} == {
        k: v for k, v in expected["docs"].items() if k not in signed
    }
    assert rebuilt["indexes"] == expected["indexes"]
    assert rebuilt["sets"] == expected["sets"]
    assert rebuilt["tracking"] == expected["tracking"]
    # byte for byte: documents as the same TEXT, entries and members alike
    got, want = raw(views_path), raw(tmp_path / "in-place.db")
    assert [r for r in got["docs"] if r[0] not in signed] == [
        r for r in want["docs"] if r[0] not in signed
    ]
    assert got["idx"] == want["idx"] and got["sets"] == want["sets"]
    assert not list(views_path.parent.glob("views.db.rebuild-*"))  # the spill file removed
    # the reader's connection still writes into the live views (not an unlinked file)
    reader.apply([Put("after", {"ok": True})])
    fresh = SqliteViewStore(views_path)
    assert fresh.get("after") == {"ok": True}
    for store in (fresh, reader, in_place):
        store.close()
    log.close()
