"""`keel audit verify`'s log part on both fold cores (issue 37): the same report, word for word.

A `keel demo` home is damaged as an attacker with file access would: a record altered in place
under its signature (which also rewrites the tree its checkpoints signed), the newest record of
another tree deleted (truncation), and records appended with an altered value, another event's
signature, a cut value, an unknown schema fingerprint, bytes that are not an event, no
signature, and a replayed duplicate; a witness copy of the checkpoints carries a rewritten
note and a garbled one beside the genuine ones. Verify runs on the Python core (the
specification) and on the native one (keel_fold): every problem, count, tree and root check
is the same.
"""

from __future__ import annotations

import base64
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from keel.audit.verify_run import log_notes, run_verify
from keel.bootstrap import bootstrap
from keel.codec import Codec
from keel.events import decode_event
from keel.log.port import OutgoingEvent
from keel.schemas.registry import load_registry
from tests.demo_home import demo_home, demo_settings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d, _ = demo_home(tmp_path_factory.mktemp("verify-cores"))
    return d


def _damage(demo: dict[str, Any], workdir: Path) -> tuple[dict[str, Any], Path]:
    """A damaged copy of the demo home, and a witness file with one rewritten note."""
    home = workdir / "home"
    shutil.copytree(demo["home"], home)
    d = {**demo, "home": str(home)}
    witness = workdir / "witness.json"
    with bootstrap(demo_settings(d), create=False) as rt:
        notes = [text for _, text in log_notes(rt, [])]
        deployments = list(rt.log.read(["deployments"]))
        assert len(deployments) >= 2 and notes, "the demo deployed or checkpointed too little"
    lines = notes[-1].split("\n")
    # a note whose root (third line) was rewritten: its signature no longer checks; and one
    # whose root is not even base64
    rewritten = [*lines[:2], base64.b64encode(bytes(32)).decode(), *lines[3:]]
    garbled = [*lines[:2], lines[2][::-1], *lines[3:]]
    forged = ["\n".join(rewritten), "\n".join(garbled)]
    witness.write_text(json.dumps({"notes": [*notes, *forged]}), encoding="utf-8")
    first, last = deployments[0], deployments[-1]
    with sqlite3.connect(home / "log.db") as db:
        # a record altered in place: its signature and every checkpoint over it break
        db.execute(
            "UPDATE events SET value = ? WHERE seq = ?", (_altered(first.value), first.offset)
        )
        # the newest record of another tree deleted: checkpoints cover more than the log holds
        (other,) = db.execute(
            "SELECT MAX(seq) FROM events WHERE topic NOT IN ('audit', 'deployments')"
        ).fetchone()
        db.execute("DELETE FROM events WHERE seq = ?", (other,))
    stranger = last.value[:2] + bytes(8) + last.value[10:]  # no schema has this fingerprint
    appended = [
        (_altered(last.value), last.sig),  # altered under its signature
        (last.value, first.sig),  # another event's signature
        (last.value[:-3], last.sig),  # cut
        (stranger, last.sig),  # unknown fingerprint
        (b"not an event", None),  # not Avro at all
        (last.value, None),  # unsigned (and a duplicate event ID)
        (last.value, last.sig),  # a replayed duplicate
    ]
    with bootstrap(demo_settings(d), create=False) as rt:
        rt.log.append([OutgoingEvent(last.topic, last.key, 1, v, s) for v, s in appended])
    return d, witness


def _altered(value: bytes) -> bytes:
    """The record with one character of its event ID changed: it still decodes, as another
    event, but no longer under its signature."""
    event_id = decode_event(Codec(load_registry()), value).envelope.event_id.encode()
    at = value.index(event_id)
    swapped = b"1" if value[at : at + 1] != b"1" else b"2"
    return value[:at] + swapped + value[at + 1 :]


def _verify(d: dict[str, Any], witness: Path, fold: str) -> dict[str, Any]:
    settings = demo_settings(d).model_copy(update={"fold": fold})
    with bootstrap(settings, create=False) as rt:
        # the log part: the views' fresh fold and the artifacts are not the cores' work
        return run_verify(rt, [witness], ["artifacts", "views"])


def test_verify_finds_the_same_problems_on_both_cores(demo: dict[str, Any], tmp_path: Path) -> None:
    d, witness = _damage(demo, tmp_path)
    python = _verify(d, witness, "python")
    native = _verify(d, witness, "native")
    assert (python.pop("fold"), native.pop("fold")) == ("python", "native")
    kinds = {(p["area"], p["kind"]) for p in python["problems"]}
    # the damage was seen, each kind of it
    assert {
        ("log", "undecodable"),
        ("signature", "bad-signature"),
        ("signature", "unsigned"),
        ("checkpoint", "bad-signature"),
        ("checkpoint", "malformed"),
        ("checkpoint", "rewritten"),
        ("checkpoint", "truncated"),
    } <= kinds, kinds
    undecodable = [p for p in python["problems"] if p["kind"] == "undecodable"]
    assert len(undecodable) == 3  # cut, unknown fingerprint, not Avro
    assert native == python
