"""Processes started together on a brand-new home each made their own admin key.

The admin key is made on first use (decision 0022: KEEL_ADMIN_DIR, never the home). Two
`keel keys record` (or `keel init`, `keel demo`) started at once both found no key, each made
one and each recorded itself as the trail's genesis: the admin directory held several keys,
keys.toml named one of them, the trail refused the others' events as forged and verify failed.
Noticed with two pytest workers sharing one default admin directory. Both shapes here, with
real processes: several on one home, and several homes sharing one admin directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keel.signing import ADMIN_IDENTITY, DEFAULT_ROLES, create_key, load_trust

pytestmark = pytest.mark.faults
KEEL = str(Path(sys.executable).with_name("keel"))
PROCESSES = 6
ROUNDS = 10


def project(root: Path, admin: Path) -> dict[str, str]:
    """A project with the services' keys in keys.toml and nothing yet in its trail or in
    `admin`; the env that points `keel` at it."""
    (root / "proj").mkdir(parents=True)
    for identity in DEFAULT_ROLES:
        create_key(identity, root / "proj" / "keys.toml", root / "keys")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(root / "home"),
        KEEL_PROJECT=str(root / "proj" / "keel.toml"),
        KEEL_KEYS_DIR=str(root / "keys"),
        KEEL_ADMIN_DIR=str(admin),
    )
    return env


def record_at_once(envs: list[dict[str, str]]) -> list[dict[str, Any]]:
    """`keel keys record` in one process per env, all started before any is waited for."""
    procs = [
        subprocess.Popen(
            [KEEL, "keys", "record", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for env in envs
    ]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    return outs


def verify(env: dict[str, str]) -> dict[str, Any]:
    r = subprocess.run(
        [KEEL, "audit", "verify", "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert r.stdout.startswith("{"), r.stderr
    return dict(json.loads(r.stdout))


def admin_files(admin: Path) -> list[str]:
    return sorted(p.name for p in admin.glob(f"{ADMIN_IDENTITY}.*.key"))


def the_admin(env: dict[str, str]) -> list[str]:
    """The active admin keys keys.toml names."""
    trust = load_trust(Path(env["KEEL_PROJECT"]).with_name("keys.toml"))
    return [k.id for k in trust.keys.values() if k.identity == ADMIN_IDENTITY]


def test_processes_on_one_new_home_make_one_admin_key(tmp_path: Path) -> None:
    admin = tmp_path / "admin"
    env = project(tmp_path, admin)
    outs = record_at_once([env] * PROCESSES)

    files = admin_files(admin)
    assert len(files) == 1, files  # before: one per process that found none
    kid = files[0].split(".")[1]
    assert the_admin(env) == [kid]
    # the keyring entered the trail once: the first process recorded it, the others found it
    recorded = [line for out in outs for line in out["recorded"]]
    assert sorted(recorded) == sorted(
        f"KeyAdded {k.id}"
        for k in load_trust(Path(env["KEEL_PROJECT"]).with_name("keys.toml")).keys.values()
    ), recorded
    doc = verify(env)
    assert doc["ok"], doc["problems"]


# Each process imports what it needs, says it is ready, then waits for the start signal and
# asks for the admin key: their first uses fall within a fraction of a millisecond of each
# other, as two test workers' first `keel init` on one default admin directory did.
FIRST_USE = """
import sys, time
from pathlib import Path
from keel.signing import admin_key
import cryptography.hazmat.primitives.asymmetric.ed25519
import cryptography.hazmat.primitives.serialization
admin, ready, go = (Path(a) for a in sys.argv[1:4])
ready.touch()
while not go.exists():
    time.sleep(0.0002)
made = admin_key(admin)
print(made[0].id)
"""


def first_uses_at_once(root: Path) -> tuple[list[str], list[str]]:
    """(the admin key files, the key ID each process was handed) after PROCESSES processes
    asked for the admin key of one new directory at once."""
    root.mkdir()
    admin, go = root / "admin", root / "go"
    ready = [root / f"ready{i}" for i in range(PROCESSES)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FIRST_USE, str(admin), str(r), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in ready
    ]
    while not all(r.exists() for r in ready):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)
    go.touch()
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        ids.append(out.strip())
    return admin_files(admin), ids


def test_first_uses_at_once_make_one_admin_key(tmp_path: Path) -> None:
    """Homes sharing one admin directory (the default, ~/.config/keel/admin) get one key.
    On two cores the old check-then-make collided in 6 of 10 rounds (2-5 keys of 6), so ten
    rounds: the old code would pass all ten ~1 time in 10,000."""
    for round_ in range(ROUNDS):
        files, ids = first_uses_at_once(tmp_path / f"round{round_}")
        assert len(files) == 1, (round_, files)
        assert set(ids) == {files[0].split(".")[1]}, (round_, ids)
