"""The witness's decision (keel.audit.witness.judge) on real signed notes and real trees: it
takes a checkpoint only with a consistency proof from the one it holds, and calls two notes
that no proof links a conflict (equivocation); `equivocations` turns such pairs into evidence
only when the audit key signed both."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit.witness import Anchor, anchor_problem, judge
from keel.audit.witness_client import equivocations
from keel.signing import PublicKey, Signer, Trust

pytestmark = pytest.mark.unit
AT = datetime(2025, 6, 1, tzinfo=UTC)


def _signer() -> Signer:
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    key = PublicKey(cp.AUDIT_IDENTITY, "k1", public)
    return Signer(Trust([key]), {"k1": private})


SIGNER = _signer()


def leaves(tag: str, n: int) -> list[bytes]:
    return [merkle.leaf_hash(f"{tag}{i}".encode()) for i in range(n)]


def note(tree: list[bytes], signer: Signer = SIGNER) -> tuple[cp.Note, str]:
    text = cp.sign(cp.body("registry", 0, len(tree), merkle.root(tree), AT), signer)
    return cp.parse(text), text


def test_first_same_and_extending_checkpoints_are_taken() -> None:
    log = leaves("a", 40)
    held, _ = note(log[:13])
    assert judge(None, held, []).kind == "first"
    assert judge(held, note(log[:13])[0], []).kind == "same"
    proof = merkle.consistency_proof(13, log)
    verdict = judge(held, note(log)[0], proof)
    assert verdict.accepted and verdict.kind == "extends"


def test_a_rewritten_history_is_a_conflict_even_with_a_proof_from_its_own_tree() -> None:
    genuine = leaves("a", 40)
    fork = [*genuine[:5], merkle.leaf_hash(b"rewritten"), *genuine[6:]]
    held, _ = note(genuine[:20])
    # the fork's honest proof, from its own tree: it cannot meet the root held
    verdict = judge(held, note(fork)[0], merkle.consistency_proof(20, fork))
    assert not verdict.accepted and verdict.kind == "conflict"
    same_size = judge(held, note(fork[:20])[0], [])
    assert same_size.kind == "conflict" and "two roots" in same_size.detail


def test_an_older_checkpoint_is_stale_not_taken() -> None:
    log = leaves("a", 30)
    verdict = judge(note(log)[0], note(log[:10])[0], [])
    assert not verdict.accepted and verdict.kind == "stale"


def test_anchor_problems_name_deletion_and_rewrite() -> None:
    log = leaves("a", 12)
    anchor = Anchor("the default witness", note(log)[0])
    assert anchor_problem(anchor, 12, merkle.root(log)) is None
    assert "deleted" in (anchor_problem(anchor, 11, None) or "")
    rewritten = [*log[:3], merkle.leaf_hash(b"x"), *log[4:]]
    assert "altered" in (anchor_problem(anchor, 13, merkle.root(rewritten)) or "")


def test_equivocation_needs_both_notes_signed_by_the_audit_key() -> None:
    a, b = leaves("a", 8), leaves("b", 8)
    (_, ta), (_, tb) = note(a), note(b)
    found = equivocations([("log", ta), ("witness W", tb)], [], SIGNER.trust)
    assert len(found) == 1 and found[0]["first"] == ta and found[0]["second"] == tb
    # a note signed by another key (an attacker's) proves nothing against the log's key
    _, forged = note(b, _signer())
    assert equivocations([("log", ta), ("witness W", forged)], [], SIGNER.trust) == []
    kept = [{"held": ta, "offered": tb, "detail": "d", "witness": "W"}]
    assert len(equivocations([], kept, SIGNER.trust)) == 1
