"""Bad input at the boundaries: one clear message, exit non-zero, nothing stored is lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keel.bootstrap import bootstrap
from keel.codec import CodecError
from keel.consume import decode_or_quarantine, quarantine_event
from keel.events import decode_event, encode_event
from keel.log.port import LogRecord, OutgoingEvent
from keel_services.entrypoints.cli.main import app
from tests.conftest import make_deployed

pytestmark = pytest.mark.faults

runner = CliRunner()


def keel(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


def keel_out(*args: str) -> str:
    """Standard output alone: what a script reads (warnings go to standard error)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stdout + result.stderr
    return result.stdout


def test_missing_home_is_explained_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope"
    monkeypatch.setenv("KEEL_HOME", str(missing))
    code, out = keel("artifacts", "verify")
    assert code == 2
    assert f"KEEL_HOME {missing} does not exist" in out and "hint:" in out
    assert not missing.exists()


def test_unwritable_home_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("KEEL_HOME", str(blocker / "home"))  # cannot be created, even by root
    note = tmp_path / "note.txt"
    note.write_text("x")
    code, out = keel("artifacts", "put", str(note), "--kind", "note")
    assert code == 2
    assert "cannot create KEEL_HOME" in out and "hint:" in out
    monkeypatch.setenv("KEEL_HOME", str(blocker))
    code, out = keel("artifacts", "put", str(note), "--kind", "note")
    assert code == 2 and "is not a directory" in out
    assert blocker.read_text() == "not a directory"


def test_changed_and_vanished_artifacts_are_reported(home: Path, tmp_path: Path) -> None:
    files = []
    for i in range(3):
        f = tmp_path / f"f{i}.txt"
        f.write_text(f"content {i}")
        files.append(f)
    ids = [keel_out("artifacts", "put", str(f), "--kind", "doc").strip() for f in files]
    objects = home / "artifacts" / "objects"
    changed = objects / ids[0][:2] / ids[0][2:]
    os.chmod(changed, 0o644)
    changed.write_text("edited by hand")
    (objects / ids[1][:2] / ids[1][2:]).unlink()
    code, out = keel("artifacts", "verify", "--json")
    assert code == 1
    doc = json.loads(out)
    assert {(p["id"], p["error"]) for p in doc["problems"]} == {
        (ids[0], "ArtifactCorrupted"),
        (ids[1], "ArtifactMissing"),
    }
    assert keel("artifacts", "verify", ids[2][:8])[0] == 0  # the intact one is untouched
    code, out = keel("artifacts", "put", str(files[2]), "--kind", "doc")
    assert (code, out.strip()) == (0, ids[2])


def test_corrupt_event_bytes_do_not_stop_a_consumer(home: Path, codec: object) -> None:
    with bootstrap() as rt:
        good = encode_event(rt.codec, make_deployed())
        junk = [b"\xc3\x01" + b"\x07" * 8 + b"body", good[:15], b"plain text", good + b"!!"]
        rt.log.append([OutgoingEvent("deployments", "k", 1, v) for v in [good, *junk, good]])
        quarantined: list[tuple[LogRecord, CodecError]] = []
        decoded = [
            decode_or_quarantine(rt.codec, r, lambda rec, err: quarantined.append((rec, err)))
            for r in rt.log.read()
        ]
        assert [d is not None for d in decoded] == [True, False, False, False, False, True]
        reasons = [type(e).__name__ for _, e in quarantined]
        assert reasons == ["UnknownSchema", "Truncated", "NotSingleObject", "CorruptBody"]
        # the quarantine keeps the bytes verbatim, as a decodable event of its own
        rec, err = quarantined[0]
        q = quarantine_event(rec, err, service="test", code_version="cv")
        rt.publish([q])
        back = decode_event(rt.codec, next(iter(rt.log.read(["quarantine"]))).value)
        assert back.raw == junk[0] and "UnknownSchema(fingerprint=0707070707070707)" in back.reason
    code, out = keel("audit", "tail")
    assert code == 0
    kinds = [line.split()[3] for line in out.splitlines()]
    assert kinds == ["ModelDeployed", *["UNDECODABLE"] * 4, "ModelDeployed", "EventQuarantined"]


def test_bad_cli_arguments_are_explained(home: Path, tmp_path: Path) -> None:
    code, out = keel("artifacts", "put", str(tmp_path / "absent"), "--kind", "x")
    assert code == 2 and "not a readable file" in out
    f = tmp_path / "f"
    f.write_text("x")
    code, out = keel("artifacts", "put", str(f), "--kind", "x", "--param", "novalue")
    assert code == 2 and "is not K=V" in out
    code, out = keel("artifacts", "put", str(f), "--kind", "x", "--parent", "deadbeef00")
    assert code == 2 and "no artifact matches" in out
