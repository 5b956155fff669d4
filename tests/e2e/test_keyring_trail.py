"""Issue 33, items 2 and 9 (decision 0022): the keyring is part of the trail.

An attacker who can write the files but holds no admin key replaces a service's key in
keys.toml and re-signs its records, or adds a key of their own and appends a forgery: verify
fails, naming the key. A project with unsigned history adopts it explicitly, and the history
survives keys and a rebuild. Kafka + Redis: tests/integration/test_keyring_kafka.py."""

from __future__ import annotations

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from keel.bootstrap import bootstrap, sign_all
from keel.events import decode_event
from keel.settings import Settings
from keel.signing import PublicKey, Signer, Trust, create_key, load_trust, write_keys
from tests.demo_home import demo_home

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def keel(env: dict[str, str], *args: str, cwd: Path | None = None) -> Any:
    r = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
    assert r.returncode in (0, 1), r.stderr
    return r


def verify(env: dict[str, str]) -> dict[str, Any]:
    r = keel(env, "audit", "verify", "--json")
    assert r.stdout.startswith("{"), r.stderr
    return dict(json.loads(r.stdout))


def keyring_problems(doc: dict[str, Any]) -> list[str]:
    return [p["detail"] for p in doc["problems"] if p["area"] == "keyring"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("keyring") / "demo"
    demo_home(workdir)
    return workdir


def copy_demo(pristine: Path, tmp_path: Path) -> tuple[Path, dict[str, str], Settings]:
    """A private copy of the demo (the tests tamper with it), its env and settings."""
    workdir = tmp_path / "demo"
    shutil.copytree(pristine, workdir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(workdir / "home"),
        KEEL_PROJECT=str(workdir / "keel.toml"),
        KEEL_KEYS_DIR=str(workdir / "keys"),
    )
    settings = Settings(
        home=workdir / "home",
        bus="",
        views="",
        project=workdir / "keel.toml",
        keys_dir=workdir / "keys",
    )
    return workdir, env, settings


def attacker_key(workdir: Path, identity: str) -> tuple[PublicKey, Any]:
    """A key the attacker makes for `identity` (in a directory of their own)."""
    from keel.signing import load_private

    spare = workdir / "mallory.toml"
    key = create_key(identity, spare, workdir / "mallory")
    return key, load_private(workdir / "mallory")[key.id]


def test_the_demo_records_its_keyring_and_verifies(pristine: Path, tmp_path: Path) -> None:
    _, env, _ = copy_demo(pristine, tmp_path)
    doc = verify(env)
    assert doc["ok"], doc["problems"]
    assert doc["keyring"]["keys"] == len(load_trust(pristine / "keys.toml").keys)


def test_a_replaced_deploy_key_with_resigned_records_fails_naming_the_key(
    pristine: Path, tmp_path: Path
) -> None:
    workdir, env, _ = copy_demo(pristine, tmp_path)
    keys_file = workdir / "keys.toml"
    trust = load_trust(keys_file)
    old = next(k for k in trust.keys.values() if k.identity == "deploy" and k.status == "active")
    new, private = attacker_key(workdir, "deploy")
    write_keys(keys_file, [new if k.id == old.id else k for k in trust.keys.values()])
    # re-sign, in place, every record the deploy key signed
    signer = Signer(load_trust(keys_file), {new.id: private}, "deploy")
    with sqlite3.connect(workdir / "home" / "log.db") as db:
        rows = db.execute("SELECT seq, value, sig FROM events").fetchall()
        resigned = 0
        for seq, value, sig in rows:
            if sig and old.id in sig.hex():
                # the event type only picks the role check; it is not in the signature
                (fresh,) = signer.sign([("deploy", "ModelDeployed", value)])
                db.execute("UPDATE events SET sig = ? WHERE seq = ?", (fresh, seq))
                resigned += 1
    assert resigned
    doc = verify(env)
    assert not doc["ok"]
    named = " ".join(keyring_problems(doc))
    assert new.id in named and old.id in named, doc["problems"]


def test_an_attacker_key_and_its_forgery_fail_verify_naming_the_key(
    pristine: Path, tmp_path: Path
) -> None:
    workdir, env, settings = copy_demo(pristine, tmp_path)
    forged_key = add_attacker_key_and_forge(workdir, settings)
    doc = verify(env)
    assert not doc["ok"]
    assert any(forged_key.id in d for d in keyring_problems(doc)), doc["problems"]


def add_attacker_key_and_forge(workdir: Path, settings: Settings) -> PublicKey:
    """keys.toml gains a second `deploy` key the attacker holds; a ModelDeployed signed with
    it is appended through the backend's own writer (a file write on the embedded log)."""
    key, private = attacker_key(workdir, "deploy")
    with open(settings.trust_file(), "a", encoding="utf-8") as f:  # the attacker's edit
        f.write(
            f'\n[[keys]]\nidentity = "deploy"\nid = "{key.id}"\n'
            f'public = "{base64.b64encode(key.public).decode()}"\nstatus = "active"\n'
            f'created = "2099-01-01T00:00:00+00:00"\n'
        )
    with bootstrap(settings) as rt:
        last = list(rt.log.read(["deployments"]))[-1]
        real = decode_event(rt.codec, last.value)
        env = replace(real.envelope, event_id="f0f0f0f0-0000-4000-8000-00000000beef")
        forged = replace(real, envelope=env)
        signer = Signer(Trust([key]), {key.id: private}, "deploy")
        rt.log.append(sign_all(signer, rt.codec, [forged]))
    return key


def test_an_unrecorded_key_in_a_keyring_event_signed_without_the_admin_key_fails(
    pristine: Path, tmp_path: Path
) -> None:
    """The attacker also writes a KeyAdded for their key, signed with a key they made up."""
    workdir, env, settings = copy_demo(pristine, tmp_path)
    key = add_attacker_key_and_forge(workdir, settings)
    from keel.events import generated as g
    from keel.keyring_admin import _envelope

    fake_admin, fake_private = attacker_key(workdir, "admin")
    event = g.KeyAdded(
        envelope=_envelope("KeyAdded"),
        identity="deploy",
        key_id=key.id,
        public=base64.b64encode(key.public).decode(),
        reason="mallory",
    )
    with bootstrap(settings) as rt:
        signer = Signer(Trust([fake_admin]), {fake_admin.id: fake_private}, "admin")
        rt.log.append(sign_all(signer, rt.codec, [event]))
    doc = verify(env)
    kinds = {(p["area"], p["kind"]) for p in doc["problems"]}
    assert ("keyring", "forged") in kinds and ("keyring", "mismatch") in kinds, doc["problems"]


def test_unsigned_history_is_adopted_not_wiped(tmp_path: Path) -> None:
    """Item 9: keel init without keys, ingest, retrain; then keys. The history stays."""
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

    run(
        "init",
        "proj",
        "--from",
        str(train),
        "--label",
        label,
        "--id",
        "id",
        "--family",
        "cancer",
        "--no-keys",
    )
    ho = run("ingest", str(holdout), "--family", "cancer")["dataset_id"]
    run("ingest", str(train), "--family", "cancer")
    run("retrain", "--family", "cancer", "--eval-dataset", ho)
    before = verify(env)
    assert before["events"] > 0

    made = run("keys", "create")
    assert made["unadopted"] == before["events"]  # offered, not done behind the user's back
    adopted = run("keys", "adopt", "--reason", "our history before keys")
    assert sum(adopted["adopted"].values()) == before["events"]

    doc = verify(env)
    assert doc["ok"], doc["problems"]
    assert doc["keyring"]["adopted_records"] == before["events"]
    assert doc["keyring"]["adoption_reasons"] == ["our history before keys"]
    history = run("audit", "history", "--family", "cancer")
    keel(env, "audit", "rebuild", cwd=tmp_path)
    assert run("audit", "history", "--family", "cancer") == history  # nothing dropped
    out = run("retrain", "--family", "cancer", "--eval-dataset", ho)
    assert out["model_id"]
    assert verify(env)["ok"]

    # the adopted prefix is sealed: altering one of its records fails verify
    with sqlite3.connect(tmp_path / "home" / "log.db") as db:
        seq, value = db.execute(
            "SELECT seq, value FROM events WHERE sig IS NULL ORDER BY seq LIMIT 1"
        ).fetchone()
        altered = value.replace(b"ingest", b"ingesT", 1)  # the producer's name, still decodable
        assert altered != value
        db.execute("UPDATE events SET value = ? WHERE seq = ?", (altered, seq))
    kinds = {(p["area"], p["kind"]) for p in verify(env)["problems"]}
    assert ("keyring", "adopted-rewritten") in kinds
