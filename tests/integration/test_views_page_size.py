"""New SQLite views files get the larger page size of keel.views.sqlite (decision 0041, "Page
size (H5)"): `keel audit project` on a new home makes views.db with it. A views file made before
keeps its page size (SQLite changes it only by a VACUUM, which a WAL file refuses): folded into
by the new code, it stays at 4096 and answers as a new file does."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from keel.audit.anchors import NOTES
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.views.sqlite import SqliteViewStore
from tests.faults.killing import KEEL, clean_env
from tests.faults.test_projector_kill import events, signed_project

pytestmark = pytest.mark.integration

NEW_PAGE = 8192  # keel.views.sqlite's page size for new views (spelled: the test ran on old code)
OLD_PAGE = 4096  # SQLite's default: every views file made before
STEPS = 300  # an artifact and its deployment each


Project = tuple[Path, list[Any]]


def _append(home: Path, records: list[Any]) -> None:
    log = SqliteEventLog(home / "log.db")
    try:
        log.append(records)
    finally:
        log.close()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, codec: Codec) -> Project:
    """A signed project, a home whose log holds the first half of the steps (no views) and the
    second half's signed records (the same bytes appended to every home: events' IDs are
    random)."""
    root = tmp_path_factory.mktemp("views-page-size")
    signer, _ = signed_project(root)
    (root / "home").mkdir()
    _append(
        root / "home", sign_all(signer, codec, [e for i in range(STEPS // 2) for e in events(i)])
    )
    later = sign_all(signer, codec, [e for i in range(STEPS // 2, STEPS) for e in events(i)])
    return root, later


def _home(project: Project, tmp_path: Path) -> Path:
    home = tmp_path / "home"
    shutil.copytree(project[0] / "home", home)
    return home


def _keel_audit_project(root: Path, home: Path) -> dict[str, object]:
    env = clean_env(
        KEEL_HOME=str(home),
        KEEL_PROJECT=str(root / "keel.toml"),
        KEEL_KEYS_DIR=str(root / "private"),
    )
    done = subprocess.run(
        [KEEL, "audit", "project", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _page_size(path: Path) -> int:
    db = sqlite3.connect(str(path))
    try:
        return int(db.execute("PRAGMA page_size").fetchone()[0])
    finally:
        db.close()


def _answers(path: Path) -> dict[str, object]:
    """The views' documents, index entries and sets, but the last checkpoint's note (it carries
    the time it was signed)."""
    views = SqliteViewStore(path)
    try:
        snap = views.snapshot()
    finally:
        views.close()
    docs = {k: v for k, v in snap["docs"].items() if k != NOTES}
    return {"docs": docs, "indexes": snap["indexes"], "sets": snap["sets"]}


def test_keel_audit_project_makes_new_views_with_the_larger_page(
    project: Project, tmp_path: Path
) -> None:
    home = _home(project, tmp_path)
    assert not (home / "views.db").exists()
    _keel_audit_project(project[0], home)
    assert _page_size(home / "views.db") == NEW_PAGE
    _append(home, project[1])
    _keel_audit_project(project[0], home)  # opened again: the file keeps its size
    assert _page_size(home / "views.db") == NEW_PAGE
    views = SqliteViewStore(home / "views.db")
    try:
        assert (views.get("projector:stats") or {})["applied"] == 2 * STEPS
    finally:
        views.close()


def test_views_made_before_keep_their_page_size_and_are_folded_into(
    project: Project, tmp_path: Path
) -> None:
    root, later = project
    old = _home(project, tmp_path / "old")
    # a views file made as every home's was before: SQLite's default page
    SqliteViewStore(old / "views.db", page_size=OLD_PAGE).close()
    _keel_audit_project(root, old)
    _append(old, later)
    # a new home on the same log (the same records, recorded at the same times)
    new = tmp_path / "new"
    new.mkdir()
    shutil.copy(old / "log.db", new / "log.db")
    for home in (old, new):
        _keel_audit_project(root, home)
    assert _page_size(old / "views.db") == OLD_PAGE
    assert _page_size(new / "views.db") == NEW_PAGE
    old_answers = _answers(old / "views.db")
    assert old_answers["docs"]["projector:stats"]["applied"] == 2 * STEPS  # type: ignore[index]
    assert old_answers == _answers(new / "views.db")
