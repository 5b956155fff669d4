"""The Merkle tree code against RFC 9162's recursive definitions, for every size up to a few
hundred: roots, inclusion proofs and consistency proofs verify, and any change makes them fail."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keel.audit import merkle

pytestmark = pytest.mark.unit


def mth(data: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, literally."""
    n = len(data)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hashlib.sha256(b"\x00" + data[0]).digest()
    k = 1
    while k * 2 < n:
        k *= 2
    return hashlib.sha256(b"\x01" + mth(data[:k]) + mth(data[k:])).digest()


def path(m: int, data: list[bytes]) -> list[bytes]:
    """RFC 9162 2.1.3.1, literally."""
    n = len(data)
    if n == 1:
        return []
    k = 1
    while k * 2 < n:
        k *= 2
    if m < k:
        return [*path(m, data[:k]), mth(data[k:])]
    return [*path(m - k, data[k:]), mth(data[:k])]


def leaves(n: int) -> tuple[list[bytes], list[bytes]]:
    data = [f"event {i}".encode() for i in range(n)]
    return data, [merkle.leaf_hash(d) for d in data]


def test_roots_match_the_rfc_for_every_size_up_to_300() -> None:
    for n in range(0, 301):
        data, hashes = leaves(n)
        frontier = merkle.Frontier()
        frontier.extend(hashes)
        assert merkle.root(hashes) == mth(data) == frontier.root(), n
        assert merkle.Frontier.from_doc(frontier.to_doc()).root() == frontier.root()


def test_inclusion_proofs_for_every_leaf_up_to_130() -> None:
    for n in range(1, 131):
        data, hashes = leaves(n)
        r = mth(data)
        for m in range(n):
            proof = merkle.inclusion_proof(m, hashes)
            assert proof == path(m, data)
            assert merkle.verify_inclusion(m, n, hashes[m], proof, r)
            if n > 1:
                assert not merkle.verify_inclusion((m + 1) % n, n, hashes[m], proof, r)


def test_consistency_proofs_for_every_pair_up_to_70() -> None:
    for n in range(0, 71):
        _, hashes = leaves(n)
        rn = merkle.root(hashes)
        for m in range(0, n + 1):
            rm = merkle.root(hashes[:m])
            proof = merkle.consistency_proof(m, hashes)
            assert merkle.verify_consistency(m, n, rm, rn, proof), (m, n)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, rn, rm, proof)
                assert not merkle.verify_consistency(m, n, rm, merkle.leaf_hash(b"x"), proof)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(min_value=2, max_value=400),
    data=st.data(),
)
def test_any_change_to_a_proof_fails(n: int, data: st.DataObject) -> None:
    _, hashes = leaves(n)
    r = merkle.root(hashes)
    m = data.draw(st.integers(0, n - 1))
    proof = merkle.inclusion_proof(m, hashes)
    assert merkle.verify_inclusion(m, n, hashes[m], proof, r)
    i = data.draw(st.integers(0, len(proof) - 1))
    bad = [*proof[:i], merkle.leaf_hash(b"forged"), *proof[i + 1 :]]
    assert not merkle.verify_inclusion(m, n, hashes[m], bad, r)
    assert not merkle.verify_inclusion(m, n, hashes[m], proof[:-1], r)
    old = data.draw(st.integers(1, n - 1))
    cproof = merkle.consistency_proof(old, hashes)
    rold = merkle.root(hashes[:old])
    assert merkle.verify_consistency(old, n, rold, r, cproof)
    j = data.draw(st.integers(0, len(cproof) - 1))
    cbad = [*cproof[:j], merkle.leaf_hash(b"forged"), *cproof[j + 1 :]]
    assert not merkle.verify_consistency(old, n, rold, r, cbad)
    # a rewritten history: the same size, one leaf changed, is not consistent
    rewritten = [*hashes[: old - 1], merkle.leaf_hash(b"rewritten"), *hashes[old:]]
    assert not merkle.verify_consistency(
        old, n, rold, merkle.root(rewritten), merkle.consistency_proof(old, rewritten)
    )


def test_all_proofs_at_once_equal_one_by_one() -> None:
    for n in (1, 2, 3, 5, 8, 13, 128, 129):
        _, hashes = leaves(n)
        assert merkle.inclusion_proofs(hashes) == [
            merkle.inclusion_proof(m, hashes) for m in range(n)
        ]


def test_level_by_level_paths_are_the_rfc_paths_up_to_300() -> None:
    assert merkle.tree_paths([]) == (merkle.EMPTY_ROOT, [])
    for n in range(1, 301):
        data, hashes = leaves(n)
        r, paths = merkle.tree_paths(hashes)
        assert r == mth(data), n
        assert paths == [path(m, data) for m in range(n)], n
