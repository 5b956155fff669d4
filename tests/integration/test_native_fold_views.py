"""Both fold cores over one real trail give the same views (decision 0027).

A `keel demo` home's log, with damaged records appended (an altered value under its signature,
a record that is not Avro, an unsigned event, a replayed duplicate and a record of another
trail's key), is folded into fresh SQLite views by the Python fold (the specification) and by
the native one: every document, index entry, set, tracking position and tree is the same, and
so is what each run counted.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from keel.audit.projector import Projector
from keel.bootstrap import bootstrap
from keel.log.port import OutgoingEvent
from keel.views.factory import open_views
from tests.demo_home import demo_home, demo_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d, _ = demo_home(tmp_path_factory.mktemp("native-fold"))
    return d


def _damage(demo: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """A copy of the demo home whose log ends with records each fold must refuse or skip."""
    home = workdir / "home"
    shutil.copytree(demo["home"], home)
    d = {**demo, "home": str(home)}
    with bootstrap(demo_settings(d), create=False) as rt:
        recs = list(rt.log.read(["deployments"]))
        assert recs, "the demo deployed nothing"
        first, last = recs[0], recs[-1]
        altered = bytearray(last.value)
        altered[-1] ^= 1
        out = [
            (last.topic, last.key, bytes(altered), last.sig),  # altered under its signature
            (first.topic, first.key, b"not an event", None),  # undecodable
            (first.topic, first.key, first.value, None),  # unsigned (and a duplicate ID)
            (first.topic, first.key, first.value, first.sig),  # a replayed duplicate
            (last.topic, last.key, last.value, first.sig),  # another event's signature
        ]
        rt.log.append([OutgoingEvent(t, k, 1, v, s) for t, k, v, s in out])
    return d


def _fold(d: dict[str, Any], fold: str, views_path: Path) -> tuple[dict[str, Any], Any]:
    with bootstrap(demo_settings(d), create=False) as rt:
        views = open_views(f"sqlite:///{views_path}")
        try:
            # trust without a signer: no checkpoint is appended, so both folds read one log
            progress = Projector(rt.log, views, rt.codec, trust=rt.trust, fold=fold).run()
            return views.snapshot(), progress
        finally:
            views.close()


def test_both_folds_give_the_same_views(demo: dict[str, Any], tmp_path: Path) -> None:
    d = _damage(demo, tmp_path)
    python, p = _fold(d, "python", tmp_path / "python.db")
    native, n = _fold(d, "native", tmp_path / "native.db")
    assert (p.fold, n.fold) == ("python", "native")
    assert p.rejected >= 2 and p.undecodable >= 1 and p.applied > 0  # the damage was seen
    assert {**n.__dict__, "fold": "python"} == p.__dict__
    assert native == python
