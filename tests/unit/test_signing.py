"""Chunk signatures: every event checks alone, any change or wrong key is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import signing
from keel.errors import KeelError

pytestmark = pytest.mark.unit


@pytest.fixture
def keyring(tmp_path: Path) -> tuple[Path, Path]:
    keys_file, keys_dir = tmp_path / "keys.toml", tmp_path / "private"
    for who in ("deploy", "ingest"):
        signing.create_key(who, keys_file, keys_dir)
    return keys_file, keys_dir


def signer(keys_file: Path, keys_dir: Path, identity: str | None = None) -> signing.Signer:
    trust = signing.load_trust(keys_file)
    return signing.Signer(trust, signing.load_private(keys_dir), identity)


def test_each_event_of_a_large_batch_verifies_alone(keyring: tuple[Path, Path]) -> None:
    s = signer(*keyring)
    items = [("deploy", "ModelDeployed", f"event {i}".encode()) for i in range(300)]
    sigs = s.sign(items)
    trust = signing.load_trust(keyring[0])  # a fresh verifier: no cached roots
    for (_, kind, value), sig in zip(items, sigs, strict=True):
        assert trust.check(value, sig, kind) == signing.Verdict("deploy", None)
    assert len(trust._verified) == 3  # one Ed25519 verification per chunk of 128


def test_problems_are_named(keyring: tuple[Path, Path], tmp_path: Path) -> None:
    s = signer(*keyring)
    value = b"a deployment"
    sig = s.sign([("deploy", "ModelDeployed", value)])[0]
    assert sig is not None
    trust = signing.load_trust(keyring[0])
    assert trust.check(value, None, "ModelDeployed").problem == "unsigned"
    assert "altered" in str(trust.check(b"another deployment", sig, "ModelDeployed").problem)
    assert "may not write" in str(trust.check(value, sig, "DatasetIngested").problem)
    assert "malformed" in str(trust.check(value, sig[:20], "ModelDeployed").problem)
    forged = bytearray(sig)
    forged[-1] ^= 1
    assert "altered" in str(trust.check(value, bytes(forged), "ModelDeployed").problem)
    stranger = tmp_path / "other.toml"
    signing.create_key("deploy", stranger, tmp_path / "other")
    mallory = signer(stranger, tmp_path / "other").sign([("deploy", "ModelDeployed", value)])[0]
    assert "does not list" in str(trust.check(value, mallory, "ModelDeployed").problem)


def test_a_service_may_not_sign_what_it_does_not_write(keyring: tuple[Path, Path]) -> None:
    with pytest.raises(KeelError, match="may not write ModelDeployed"):
        signer(*keyring).sign([("ingest", "ModelDeployed", b"x")])
    with pytest.raises(KeelError, match="no active key"):
        signer(*keyring).sign([("promote", "ModelPromoted", b"x")])


def test_rotation_keeps_old_events_valid_and_revocation_does_not(
    keyring: tuple[Path, Path],
) -> None:
    keys_file, keys_dir = keyring
    old = signer(keys_file, keys_dir).sign([("deploy", "ModelDeployed", b"old")])[0]
    signing.create_key("deploy", keys_file, keys_dir)
    new = signer(keys_file, keys_dir).sign([("deploy", "ModelDeployed", b"new")])[0]
    trust = signing.load_trust(keys_file)
    assert trust.check(b"old", old, "ModelDeployed").problem is None
    assert trust.check(b"new", new, "ModelDeployed").problem is None
    assert signing.decode(old).key_id != signing.decode(new).key_id
    keys = [
        signing.PublicKey(k.identity, k.id, k.public, "revoked", k.created)
        if k.status == "retired"
        else k
        for k in trust.keys.values()
    ]
    signing.write_keys(keys_file, keys)
    assert "revoked" in str(signing.load_trust(keys_file).check(b"old", old, "x").problem)


def test_a_tampered_public_key_is_refused(keyring: tuple[Path, Path]) -> None:
    from keel.errors import ConfigError

    keys_file = keyring[0]
    text = keys_file.read_text()
    public = text.split('public = "')[1].split('"')[0]
    swapped = public[:10] + ("A" if public[10] != "A" else "B") + public[11:]
    keys_file.write_text(text.replace(public, swapped))
    with pytest.raises(ConfigError, match="inconsistent"):
        signing.load_trust(keys_file)


def test_roles_in_keel_toml_are_part_of_the_project(tmp_path: Path) -> None:
    from keel.project import load_project

    project = tmp_path / "keel.toml"
    project.write_text('[families]\n\n[identities.alice]\nemits = ["ModelDeployed"]\n')
    assert load_project(project).identities["alice"].emits == ["ModelDeployed"]
    trust = signing.load_trust(tmp_path / "keys.toml", project)
    assert trust.may_emit("alice", "ModelDeployed") and not trust.may_emit("alice", "ModelTrained")
    assert trust.may_emit("deploy", "ModelDeployed")  # the defaults stay


def test_checking_many_at_once_gives_the_verdicts_of_one_by_one(
    keyring: tuple[Path, Path],
) -> None:
    """Whole chunks are checked as a whole; any change anywhere in one (a value, a path byte,
    an index, a missing or repeated member) must still be named exactly as `check` names it."""
    keys_file, keys_dir = keyring
    items = [("deploy", "ModelDeployed", f"event {i}".encode()) for i in range(300)]
    items += [("ingest", "DatasetIngested", f"data {i}".encode()) for i in range(50)]
    sigs = signer(keys_file, keys_dir).sign(items)
    base = [(value, sig, kind) for (_, kind, value), sig in zip(items, sigs, strict=True)]

    def same(batch: list[tuple[bytes, bytes | None, str | None]]) -> list[signing.Verdict]:
        alone = [signing.load_trust(keys_file).check(*b) for b in batch]
        together = signing.load_trust(keys_file).check_many(batch)
        assert together == alone
        return together

    assert all(v.problem is None for v in same(base))
    assert all(v.problem is None for v in same(base[100:]))  # chunks cut at both ends
    altered = list(base)
    altered[5] = (b"forged", *altered[5][1:])
    path_byte = bytearray(altered[7][1] or b"")
    path_byte[40] ^= 1
    altered[7] = (altered[7][0], bytes(path_byte), altered[7][2])
    altered[200] = (altered[200][0], altered[201][1], altered[200][2])  # a repeated index
    altered[310] = (altered[310][0], None, altered[310][2])
    altered[320] = (altered[320][0], altered[320][1], "ModelDeployed")  # ingest may not
    got = same(altered)
    assert [i for i, v in enumerate(got) if v.problem] == [5, 7, 200, 310, 320]
    assert all(v.problem is None for v in same(base[:127] + base[128:]))  # one member missing
