"""Recorded text is data on a terminal: never markup, never control sequences."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from keel_services.entrypoints.cli.common import safe
from tests.demo_home import demo_home
from tests.integration.test_ingest_boundary import project

__all__ = ["project"]  # the fixture

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def test_control_characters_are_shown_escaped() -> None:
    assert safe("ok \x1b[2J\x1b[32mchain intact\x07") == "ok \\x1b[2J\\x1b[32mchain intact\\x07"
    assert safe("tabs\tand\nnewlines stay") == "tabs\tand\nnewlines stay"


def test_an_actor_that_looks_like_markup_is_printed_as_is(tmp_path: Path) -> None:
    _, env = demo_home(tmp_path)
    env["KEEL_ACTOR"] = "[/oops][bold]\x1b[2J"
    r = subprocess.run(
        [KEEL, "deploy", "rollback", "--family", "breast_cancer", "--env", "prod"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for args in (
        ["audit", "serving", "--env", "prod"],
        ["audit", "why", "--env", "prod"],
        ["audit", "tail", "--topic", "deployments"],
    ):
        out = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr
        assert "\x1b[2J" not in out.stdout
    serving = subprocess.run(
        [KEEL, "audit", "serving", "--env", "prod"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    ).stdout
    assert "[/oops][bold]" in serving


def test_a_field_name_with_escape_sequences_reaches_tail_escaped(project: Path) -> None:
    """A record sent to ingest names a field `\\x1b[2J\\x1b[32mchain intact`: quarantined, and
    `keel audit tail` shows the escapes as text instead of clearing the auditor's screen."""
    import json

    from tests.integration.test_ingest_boundary import good_rows, ingest_json, keel

    hostile = "\x1b[2J\x1b[32mchain intact\x07"
    p = project / "hostile.jsonl"
    p.write_text(json.dumps({**good_rows()[0], hostile: 1}) + "\n")
    assert ingest_json(p)["quarantined"] == 1
    code, out = keel("audit", "tail", "--topic", "quarantine")
    assert code == 0 and "\x1b" not in out and "\x07" not in out, out
    assert "\\x1b[2J" in out
