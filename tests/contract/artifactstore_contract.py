"""The ArtifactStore contract, written once; adapters subclass it and provide `store`."""

from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts import (
    ArtifactConflict,
    ArtifactCorrupted,
    ArtifactMissing,
    ArtifactNotFound,
    ArtifactSpec,
)
from keel.artifacts.store import InvalidKind


def spec(kind: str = "model", inputs: tuple[str, ...] = (), **params: Any) -> ArtifactSpec:
    return ArtifactSpec(kind, "cv-test", params, inputs)


@pytest.mark.contract
class ArtifactStoreContract:
    """Subclasses provide the `store` fixture and how an attacker with write access to the
    storage itself changes or removes an artifact's bytes (`corrupt`, `lose`)."""

    def corrupt(self, store: Any, artifact_id: str, data: bytes) -> None:
        raise NotImplementedError

    def lose(self, store: Any, artifact_id: str) -> None:
        raise NotImplementedError

    def test_put_stores_under_the_spec_id(self, store: Any) -> None:
        s = spec(seed=1)
        result = store.put_bytes(s, b"weights")
        assert result.created and result.info.id == s.id
        assert store.read_bytes(s.id) == b"weights"
        info = store.info(s.id)
        assert (info.kind, info.size, info.params) == ("model", 7, {"seed": 1})

    def test_same_id_same_bytes_is_a_no_op(self, store: Any) -> None:
        s = spec(seed=1)
        first = store.put_bytes(s, b"weights")
        second = store.put_bytes(s, b"weights")
        assert not second.created and second.info == first.info

    def test_same_id_different_bytes_is_refused_and_nothing_changes(self, store: Any) -> None:
        s = spec(seed=1)
        store.put_bytes(s, b"weights-A")
        with pytest.raises(ArtifactConflict) as info:
            store.put_bytes(s, b"weights-B")
        assert "non-determinism" in info.value.hint
        assert store.read_bytes(s.id) == b"weights-A"

    def test_bytes_are_verified_on_read(self, store: Any) -> None:
        s = spec(seed=2)
        store.put_bytes(s, b"original")
        self.corrupt(store, s.id, b"tampered")
        with pytest.raises(ArtifactCorrupted):
            store.read_bytes(s.id)
        with pytest.raises(ArtifactCorrupted):
            store.copy_to(s.id, io.BytesIO())
        assert store.blob_digest(s.id) == hashlib.sha256(b"tampered").hexdigest()
        self.lose(store, s.id)
        with pytest.raises(ArtifactMissing):
            store.read_bytes(s.id)
        assert store.blob_digest(s.id) is None

    def test_verify_reports_every_problem(self, store: Any) -> None:
        ids = [store.put_bytes(spec(n=i), f"bytes {i}".encode()).info.id for i in range(4)]
        self.corrupt(store, ids[1], b"x")
        self.lose(store, ids[3])
        problems = {i.id: type(p).__name__ for i, p in store.verify() if p is not None}
        assert problems == {ids[1]: "ArtifactCorrupted", ids[3]: "ArtifactMissing"}

    def test_prefixes_resolve_like_git(self, store: Any) -> None:
        aid = store.put_bytes(spec(n=1), b"a").info.id
        assert store.resolve(aid[:8]) == aid
        assert store.resolve(aid.upper()) == aid
        with pytest.raises(ArtifactNotFound, match=">= 8"):
            store.resolve(aid[:7])
        with pytest.raises(ArtifactNotFound):
            store.resolve("0" * 64 if not aid.startswith("0" * 8) else "f" * 64)

    def test_ambiguous_prefix_is_refused(self, store: Any) -> None:
        # Birthday search for two specs whose IDs share 8 hex chars (~2^16 tries expected).
        seen: dict[str, int] = {}
        n = 0
        while (prefix := spec(n=n).id[:8]) not in seen and n < 2_000_000:
            seen[prefix] = n
            n += 1
        store.put_bytes(spec(n=n), b"1")
        store.put_bytes(spec(n=seen[prefix]), b"2")
        with pytest.raises(ArtifactNotFound, match="ambiguous"):
            store.resolve(prefix)

    def test_lineage_goes_both_ways_and_is_depth_capped(self, store: Any) -> None:
        raw = store.put_bytes(spec("dataset", n=0), b"raw").info.id
        feats = store.put_bytes(spec("feature_set", (raw,)), b"f").info.id
        model = store.put_bytes(spec("model", (feats,)), b"m").info.id
        report = store.put_bytes(spec("eval_report", (model, raw)), b"r").info.id
        up = {(n.id, n.depth) for n in store.lineage(report, "up")}
        assert up == {(model, -1), (raw, -1), (feats, -2)}
        down = [(n.id, n.depth) for n in store.lineage(raw, "down", max_depth=1)]
        assert sorted(down) == sorted([(feats, 1), (report, 1)])
        assert (model, 2) in {(n.id, n.depth) for n in store.lineage(raw, "down")}

    def test_hashing_streams_in_bounded_memory(self, store: Any, tmp_path: Path) -> None:
        big = tmp_path / "big.bin"
        with open(big, "wb") as f:
            for _ in range(32):
                f.write(os.urandom(1 << 20))
        tracemalloc.start()
        aid = store.put_file(spec("dataset", n=99), big).info.id
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 12 << 20, f"peak {peak} B while storing a 32 MiB file"
        copy = tmp_path / "copy.bin"
        tracemalloc.start()
        with open(copy, "wb") as out:
            digest = store.copy_to(aid, out)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 12 << 20, f"peak {peak} B while reading a 32 MiB artifact"
        assert digest == store.info(aid).digest and copy.stat().st_size == 32 << 20

    def test_the_outbox_holds_new_artifacts_until_announced(self, store: Any) -> None:
        aid = store.put_bytes(spec(n=5), b"new").info.id
        assert store.unannounced(aid)
        store.announced(aid)
        assert not store.unannounced(aid)
        assert not store.put_bytes(spec(n=5), b"new").created
        assert not store.unannounced(aid)

    def test_location_is_the_same_in_every_store(self, store: Any) -> None:
        aid = store.put_bytes(spec(n=6), b"x").info.id
        assert store.info(aid).location == f"objects/{aid[:2]}/{aid[2:]}"
        assert set(store.all_ids()) == {aid}

    @pytest.mark.parametrize(
        "kind", ["../../../x", "objects/ab", "Model", "x" * 65, "-rf", "note\x1b[2J"]
    )
    def test_a_kind_that_is_not_a_short_name_is_refused(
        self, store: Any, kind: str, tmp_path: Path
    ) -> None:
        s = spec(kind, n=7)
        with pytest.raises(InvalidKind, match="short name") as refused:
            store.put_bytes(s, b"x")
        assert "a-z, 0-9, _ and -" in refused.value.hint
        (tmp_path / "f").write_bytes(b"x")
        with pytest.raises(InvalidKind):
            store.put_file(s, tmp_path / "f")
        assert store.all_ids() == [] and store.blob_digest(s.id) is None  # nothing written
        assert store.put_bytes(spec("eval-notes_2", n=7), b"x").created  # a short name is fine
