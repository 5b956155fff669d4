"""Issue 33, item 9, the answers' side: a project made by `keel init` without keys, then keys.
Before adoption, `keel audit rebuild` says what it no longer shows (families, models,
datasets) and why (their events are unsigned), instead of dropping them silently; after
`keel keys adopt`, answers label the adopted events "adopted unsigned history"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from keel.signing import ADOPTED
from keel.views.sqlite import SqliteViewStore
from keel_services.audit.console import pages
from tests.e2e.test_keyring_trail import keel

pytestmark = pytest.mark.e2e


def test_rebuild_says_what_is_gone_and_answers_label_adopted_history(tmp_path: Path) -> None:
    from tests.e2e.test_init import write_csvs

    label, holdout, train = write_csvs("cancer", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(tmp_path / "home"),
        KEEL_PROJECT=str(tmp_path / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(tmp_path / "keys"),
        KEEL_ADMIN_DIR=str(tmp_path / "admin"),
    )

    def run(*args: str) -> Any:
        r = keel(env, *args, "--json", cwd=tmp_path)
        assert r.returncode == 0, r.stderr + r.stdout
        return json.loads(r.stdout)

    run("init", "proj", "--from", str(train), "--label", label, "--id", "id", "--family", "cancer",
        "--no-keys")  # fmt: skip
    ho = run("ingest", str(holdout), "--family", "cancer")["dataset_id"]
    run("ingest", str(train), "--family", "cancer")
    model = run("retrain", "--family", "cancer", "--eval-dataset", ho)["model_id"]
    shown = run("audit", "history", "--family", "cancer")["decisions"]
    assert shown

    run("keys", "create")  # keys, not yet adopted: the unsigned history is offered, not kept
    rebuilt = run("audit", "rebuild")
    assert rebuilt["before"]["models"] >= 1 and rebuilt["after"]["models"] == 0
    assert any("models no longer shown" in s and model[:12] in s for s in rebuilt["gone"])
    assert any("families no longer shown: cancer" in s for s in rebuilt["gone"])
    assert rebuilt["why_gone"].get("unsigned", 0) > 0
    text = keel(env, "audit", "rebuild", cwd=tmp_path).stdout  # nothing left to lose now
    assert "no longer shown" not in text and "models: 0 before, 0 now" in text

    run("keys", "adopt", "--reason", "our history before keys")
    rebuilt = run("audit", "rebuild")
    assert rebuilt["gone"] == [] and rebuilt["after"]["models"] >= 1
    rows = run("audit", "history", "--family", "cancer")["decisions"]
    assert [r["event_id"] for r in rows] == [r["event_id"] for r in shown]
    assert {r.get("signed_by") for r in rows} == {ADOPTED}
    wide = {**env, "COLUMNS": "400"}  # Rich folds cells to the terminal's width
    text = keel(wide, "audit", "history", "--family", "cancer", cwd=tmp_path).stdout
    assert f"({ADOPTED})" in text, text
    views = SqliteViewStore(tmp_path / "home" / "views.db")
    try:
        page = pages.model_page(views, model)
        assert {d.get("signed_by") for d in page["decisions"]} == {ADOPTED}
    finally:
        views.close()
