"""A third party checks `keel audit prove` with only the proof, the checkpoint and the audit
public key: SHA-256 and Ed25519, nothing from Keel's audit package (the RFC 9162 walk and the
C2SP note check are tools/check_report.py's, written independently of Keel's and importing
nothing from it)."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.demo_home import demo_home
from tools.check_report import note_signer, root_from_path

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


def check(proof: dict[str, Any], public: bytes) -> bool:
    note = proof["checkpoint"]
    name = proof["audit_public_key"]["name"]
    if note_signer(note, {name: public}) != name:
        return False
    lines = note.split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    leaf = hashlib.sha256(b"\x00" + base64.b64decode(proof["leaf_data"])).digest()
    path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
    return (
        size == proof["tree_size"] and root_from_path(proof["leaf_index"], size, leaf, path) == root
    )


def read_leaf(data: bytes) -> dict[str, Any]:
    """Leaf format 2 (docs/decisions/0021) as a third party parses it: three header lines after
    the magic, then the key, value and signature record by their lengths."""
    magic, position, times, lengths, rest = data.split(b"\n", 4)
    assert magic == b"keel-leaf/2"
    recorded_ms, writer_ms = (int(x) for x in times.split(b" "))
    nk, nv, ns = (int(x) for x in lengths.split(b" "))
    assert len(rest) == nk + nv + ns
    return {
        "position": position.decode(),
        "recorded_ms": recorded_ms,
        "writer_ms": writer_ms,
        "key": rest[:nk].decode(),
        "value": rest[nk : nk + nv],
        "sig": rest[nk + nv :],
    }


def test_an_inclusion_proof_checks_with_only_the_checkpoint_and_the_key(tmp_path: Path) -> None:
    demo, env = demo_home(tmp_path)
    deployment = demo["answers"]["serving_prod_at"]["serving"]["event_id"]
    out = subprocess.run(
        [KEEL, "audit", "prove", deployment, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    proof = json.loads(out.stdout)
    # The auditor's copy of the audit public key: from keys.toml in the project's repository.
    public = base64.b64decode(proof["audit_public_key"]["ed25519"])
    keys = Path(demo["project"]).with_name("keys.toml").read_text()
    assert proof["audit_public_key"]["ed25519"] in keys
    assert deployment.encode() in base64.b64decode(proof["leaf_data"])  # the event's own bytes
    assert check(proof, public)
    # the leaf says where the record sits and when the log recorded it: the answer's recorded
    # time is what the signed root covers (decision 0021)
    assert proof["leaf_format"] == 2
    leaf = read_leaf(base64.b64decode(proof["leaf_data"]))
    assert leaf["position"] == proof["position"] and deployment.encode() in leaf["value"]
    assert leaf["recorded_ms"] == demo["answers"]["serving_prod_at"]["serving"]["recorded_ms"]
    assert leaf["sig"] and leaf["key"]
    restamped = base64.b64decode(proof["leaf_data"]).replace(
        b"\n%d " % leaf["recorded_ms"], b"\n%d " % (leaf["recorded_ms"] - 1), 1
    )
    assert not check(dict(proof, leaf_data=base64.b64encode(restamped).decode()), public)

    # any change is caught: a path hash, the leaf, the checkpoint's root, the key
    bad_path = dict(proof, inclusion_path=[("00" * 32), *proof["inclusion_path"][1:]])
    assert not check(bad_path, public)
    leaf = bytearray(base64.b64decode(proof["leaf_data"]))
    leaf[-1] ^= 1
    assert not check(dict(proof, leaf_data=base64.b64encode(bytes(leaf)).decode()), public)
    lines = proof["checkpoint"].split("\n")
    lines[2] = base64.b64encode(b"\x00" * 32).decode()
    assert not check(dict(proof, checkpoint="\n".join(lines)), public)
    assert not check(proof, Ed25519PublicKey.from_public_bytes(b"\x01" * 32).public_bytes_raw())
