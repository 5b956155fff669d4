"""What an attacker with file access to a home does, scripted once and used by the trust tests
on both backends: forge, truncate, swap bytes, rewrite views, append garbage."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from dataclasses import replace
from pathlib import Path

from keel.artifacts.store import LocalArtifactStore
from keel.codec import Codec
from keel.events import decode_event, encode_event
from keel.log.port import EventLog, OutgoingEvent


def forged_deployment(log: EventLog, codec: Codec, model_id: str) -> OutgoingEvent:
    """A well-formed ModelDeployed by 'mallory' naming `model_id` in prod, copied from the last
    real deployment (so it decodes and folds), without a valid signature."""
    last = [r for r in log.read(["deployments"])][-1]
    real = decode_event(codec, last.value)
    forged_env = replace(
        real.envelope, event_id="f0f0f0f0-0000-4000-8000-000000000001", actor="mallory"
    )
    forged = replace(real, envelope=forged_env, env="prod", model_id=model_id)
    return OutgoingEvent(last.topic, last.key, last.timestamp_ms + 1, encode_event(codec, forged))


def swap_blob(store: LocalArtifactStore, victim: str, donor: str) -> None:
    """Overwrite `victim`'s bytes with `donor`'s and make the catalog agree."""
    put_blob(store, victim, store.path_of(donor).read_bytes())


def put_blob(store: LocalArtifactStore, artifact_id: str, data: bytes) -> None:
    """Write `data` as the artifact's bytes and its digest and size into the catalog."""
    path = store.path_of(artifact_id)
    os.chmod(path, 0o644)
    path.write_bytes(data)
    with sqlite3.connect(store.root / "catalog.db") as db:
        db.execute(
            "UPDATE artifacts SET digest = ?, size = ? WHERE id = ?",
            (hashlib.sha256(data).hexdigest(), len(data), artifact_id),
        )


def truncate_sqlite_log(path: Path) -> int:
    """Delete the last event and everything after it (its checkpoints too); returns its seq."""
    with sqlite3.connect(path) as db:
        last = db.execute("SELECT MAX(seq) FROM events WHERE topic != 'audit'").fetchone()[0]
        db.execute("DELETE FROM events WHERE seq >= ?", (last,))
    return int(last)


def append_sqlite(path: Path, topic: str, key: str, value: bytes, sig: bytes | None = None) -> None:
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO events (seq, topic, key, ts, value, sig) "
            "VALUES ((SELECT MAX(seq) + 1 FROM events), ?, ?, 1, ?, ?)",
            (topic, key, value, sig),
        )
