"""Decision 0034: `keel audit rebuild` of SQLite views folds into a fresh file (no journal, no
fsync, a large page cache, 20000-event batches) and copies it over the views in one transaction.
The views come out as a fold in place gives them (the projector's own batches, the views' own
pragmas), and a reader that had the views open before (another process's connection, as the
audit API's) reads the rebuilt views after, not the old file."""

from __future__ import annotations

import json
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


def test_a_rebuild_gives_the_views_a_fold_in_place_gives_and_open_readers_see_them(
    tmp_path: Path,
) -> None:
    codec = Codec(load_registry())
    make_home(tmp_path, EVENTS, codec)
    views_path = tmp_path / "home" / "views.db"
    reader = SqliteViewStore(views_path)  # open before the rebuild, kept open across it
    reader.apply([Put("tampered", {"by": "someone"})])  # something only the old views hold
    assert reader.get("tampered") is not None

    out = subprocess.run(
        [KEEL, "audit", "rebuild", "--json"], env=home_env(tmp_path), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["applied"] >= EVENTS

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
    # the reader's connection still writes into the live views (not an unlinked file)
    reader.apply([Put("after", {"ok": True})])
    fresh = SqliteViewStore(views_path)
    assert fresh.get("after") == {"ok": True}
    for store in (fresh, reader, in_place):
        store.close()
    log.close()
