"""The keyring fold (decision 0022): only the trail's admin writes it, the genesis is the admin
adding itself, and keys.toml's differences are named key by key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from keel import keyring as kr
from keel.codec import Codec
from keel.events import encode_event
from keel.keyring_admin import changes
from keel.signing import Signer, Trust, admin_key, create_key, load_private, load_trust

pytestmark = pytest.mark.unit


def signed(codec: Codec, admin: tuple[Any, Any], events: list[Any]) -> list[tuple]:
    key, private = admin
    signer = Signer(Trust([key]), {key.id: private}, "admin")
    values = [encode_event(codec, e) for e in events]
    sigs = signer.sign([("admin", e.EVENT_TYPE, v) for e, v in zip(events, values, strict=True)])
    return [
        (f"keyring/0/{i}", v, s, e)
        for i, (v, s, e) in enumerate(zip(values, sigs, events, strict=True))
    ]


def test_the_admin_adds_itself_then_the_services(codec: Codec, tmp_path: Path) -> None:
    admin = admin_key(tmp_path / "admin")
    assert admin is not None
    deploy = create_key("deploy", tmp_path / "keys.toml", tmp_path / "keys")
    folded = kr.fold(signed(codec, admin, changes(kr.Keyring(), [admin[0], deploy], "t")))
    assert not folded.refused
    assert set(folded.ring.keys) == {admin[0].id, deploy.id}
    assert kr.diff(folded.ring, {admin[0].id: admin[0], deploy.id: deploy}, {}) == []


def test_a_keyring_event_by_another_key_is_refused_and_named(codec: Codec, tmp_path: Path) -> None:
    admin = admin_key(tmp_path / "admin")
    mallory = admin_key(tmp_path / "mallory")
    assert admin is not None and mallory is not None
    deploy = create_key("deploy", tmp_path / "keys.toml", tmp_path / "keys")
    genesis = signed(codec, admin, changes(kr.Keyring(), [admin[0]], "t"))
    forged = signed(codec, mallory, changes(kr.Keyring({admin[0].id: admin[0]}), [deploy], "x"))
    folded = kr.fold([*genesis, *forged])
    assert len(folded.refused) == 1 and "admin key" in folded.refused[0][1]
    named = kr.diff(folded.ring, {admin[0].id: admin[0], deploy.id: deploy}, {})
    assert len(named) == 1 and deploy.id in named[0]


def test_rotation_retires_the_old_key(codec: Codec, tmp_path: Path) -> None:
    admin = admin_key(tmp_path / "admin")
    assert admin is not None
    keys_file = tmp_path / "keys.toml"
    old = create_key("deploy", keys_file, tmp_path / "keys")
    first = kr.fold(signed(codec, admin, changes(kr.Keyring(), [admin[0], old], "t")))
    new = create_key("deploy", keys_file, tmp_path / "keys")
    now = [admin[0], *load_trust(keys_file).keys.values()]
    events = changes(first.ring, now, "rotate")
    assert [e.EVENT_TYPE for e in events] == ["KeyRotated"]
    ring = kr.evolve(first.ring, events[0])
    assert ring.keys[old.id].status == "retired" and ring.keys[new.id].status == "active"
    assert set(load_private(tmp_path / "keys")) == {old.id, new.id}
