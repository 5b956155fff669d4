"""The local content-addressed artifact store: write-once objects plus a SQLite catalog.

Layout under the store root: `objects/ab/cdef…` (read-only files named by artifact ID) and
`catalog.db` (kind, params, parents, digest, size per ID; parent edges indexed both ways).
An object is placed with os.link from a fully written, fsynced temp file, so a reader never
sees a partial object and two writers of the same ID cannot overwrite each other.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from keel.artifacts.ids import ArtifactSpec, canonical_json, stream_digest
from keel.errors import KeelError
from keel.sqlite_wal import enable_wal

MIN_PREFIX = 8
# A kind is a short name: it is shown in tables and lineage, named in events, and must never be
# able to carry a path ("../../x") or terminal control into any adapter or tool downstream.
KIND = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


class ArtifactError(KeelError):
    pass


class ArtifactNotFound(ArtifactError):
    hint = "list what exists with `keel audit tail` or check the ID (a prefix needs >= 8 hex chars)"


class ArtifactConflict(ArtifactError):
    """Different bytes under an existing ID: the producing code is not deterministic."""

    def __init__(self, artifact_id: str, stored: str, offered: str) -> None:
        self.artifact_id, self.stored, self.offered = artifact_id, stored, offered
        super().__init__(
            f"ArtifactConflict: {artifact_id[:16]} already holds bytes with digest {stored[:16]}, "
            f"refusing different bytes {offered[:16]}",
            hint="the same inputs and code produced different bytes (non-determinism): fix the "
            "producer (seeds, ordering, timestamps in output); the stored artifact is unchanged",
        )


class ArtifactCorrupted(ArtifactError):
    def __init__(self, artifact_id: str, expected: str, actual: str) -> None:
        self.artifact_id, self.expected, self.actual = artifact_id, expected, actual
        super().__init__(
            f"ArtifactCorrupted: {artifact_id[:16]} should hash to {expected[:16]} but hashes "
            f"to {actual[:16]}",
            hint="the file was changed on disk; restore it from a backup or re-run its producer",
        )


class ArtifactMissing(ArtifactError):
    def __init__(self, artifact_id: str, where: Path | str) -> None:
        self.artifact_id = artifact_id
        super().__init__(
            f"ArtifactMissing: {artifact_id[:16]} is catalogued but {where} is gone",
            hint="restore the file from a backup or re-run its producer",
        )


class ArtifactUnrecorded(ArtifactError):
    def __init__(self, artifact_id: str) -> None:
        self.artifact_id = artifact_id
        super().__init__(
            f"ArtifactUnrecorded: {artifact_id[:16]}: no signed ArtifactRecorded announces it",
            hint="run `keel audit verify` to see what is wrong with the trail",
        )


class InvalidKind(ArtifactError):
    pass


def check_kind(kind: str) -> str:
    """The kind, if it is a short name; InvalidKind (naming the value and the rule) if not.
    Every adapter calls it before storing anything."""
    if not isinstance(kind, str) or KIND.fullmatch(kind) is None:
        raise InvalidKind(
            f"artifact kind {kind!r:.80} is refused: a kind is a short name of a-z, 0-9, _ and -",
            hint="a kind is 1-64 characters of a-z, 0-9, _ and -, starting with a letter or "
            "digit: e.g. model, prompt_template, eval-notes",
        )
    return kind


@dataclass(frozen=True)
class ArtifactInfo:
    id: str
    kind: str
    code_version: str
    params: dict[str, Any]
    parents: tuple[str, ...]
    digest: str
    size: int
    location: str
    content_digest: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "code_version": self.code_version,
            "params": self.params,
            "parents": list(self.parents),
            "digest": self.digest,
            "size": self.size,
            "location": self.location,
            "content_digest": self.content_digest,
        }


@dataclass(frozen=True)
class PutResult:
    info: ArtifactInfo
    created: bool  # False: the same bytes were already stored under this ID (a no-op)


@dataclass(frozen=True)
class LineageNode:
    id: str
    kind: str
    depth: int  # negative: ancestor at that distance; positive: descendant
    via: str  # the node it was reached from


_DDL = """
CREATE TABLE IF NOT EXISTS artifacts (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, code_version TEXT NOT NULL, params TEXT NOT NULL,
    digest TEXT NOT NULL, size INTEGER NOT NULL, content_digest TEXT
);
CREATE TABLE IF NOT EXISTS edges (
    child TEXT NOT NULL, parent TEXT NOT NULL, PRIMARY KEY (child, parent)
);
CREATE INDEX IF NOT EXISTS edges_parent ON edges (parent, child);
CREATE TABLE IF NOT EXISTS unannounced (id TEXT PRIMARY KEY);
"""


class Puts:
    """What every adapter shares on top of its own primitives: put_bytes and put_file over
    put_stream (bounded memory either way), and verify over blob_digest."""

    def put_stream(self, spec: ArtifactSpec, source: BinaryIO) -> PutResult:
        raise NotImplementedError

    def resolve(self, ref: str) -> str:
        raise NotImplementedError

    def info(self, ref: str) -> ArtifactInfo:
        raise NotImplementedError

    def all_ids(self) -> list[str]:
        raise NotImplementedError

    def blob_digest(self, artifact_id: str) -> str | None:
        raise NotImplementedError

    def where(self, artifact_id: str) -> str:
        """Where the bytes live, for messages (a path, an object key)."""
        raise NotImplementedError

    def verify(self, ref: str | None = None) -> Iterator[tuple[ArtifactInfo, ArtifactError | None]]:
        """Re-hash one artifact or all of them; yields (info, problem or None)."""
        for aid in [self.resolve(ref)] if ref else self.all_ids():
            info = self.info(aid)
            actual = self.blob_digest(aid)
            if actual is None:
                yield info, ArtifactMissing(aid, self.where(aid))
            elif actual != info.digest:
                yield info, ArtifactCorrupted(aid, info.digest, actual)
            else:
                yield info, None

    def put_bytes(self, spec: ArtifactSpec, data: bytes) -> PutResult:
        return self.put_stream(spec, io.BytesIO(data))

    def put_file(self, spec: ArtifactSpec, path: Path) -> PutResult:
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below; only the open is guarded)
        except OSError as exc:
            raise ArtifactError(
                f"cannot read {path} to store it: {exc.strerror or exc}",
                hint="the file must stay in place and readable while Keel stores it; "
                "run the command again",
            ) from None
        with f:
            return self.put_stream(spec, f)


class LocalArtifactStore(Puts):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.objects.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(root / "catalog.db"), isolation_level=None, check_same_thread=False
        )
        enable_wal(self._db, 5)  # sqlite3.connect's own default wait
        self._db.executescript(_DDL)

    # -- writing ---------------------------------------------------------------------------
    def path_of(self, artifact_id: str) -> Path:
        return self.objects / artifact_id[:2] / artifact_id[2:]

    @staticmethod
    def location_of(artifact_id: str) -> str:
        # Relative to the store root: events must not leak one machine's paths, and the same
        # artifact must be described identically in every home.
        return f"objects/{artifact_id[:2]}/{artifact_id[2:]}"

    def put_stream(self, spec: ArtifactSpec, source: BinaryIO) -> PutResult:
        """Store the bytes under spec.id. Same bytes again: no-op. Other bytes: ArtifactConflict."""
        check_kind(spec.kind)
        aid = spec.id
        final = self.path_of(aid)
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=".incoming-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = stream_digest(source, copy_to=out)
                out.flush()
                os.fsync(out.fileno())
            if spec.content_digest is not None and spec.content_digest != digest:
                raise ArtifactError(
                    f"source bytes changed while being stored (expected {spec.content_digest[:16]},"
                    f" read {digest[:16]})",
                    hint="do not modify the file while Keel reads it; run the command again",
                )
            created = _link_once(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        if not created:
            stored = self._catalog_digest(aid) or _hash_path(final)
            if stored != digest:
                raise ArtifactConflict(aid, stored, digest)
        else:
            os.chmod(final, 0o444)
        info = ArtifactInfo(
            aid,
            spec.kind,
            spec.code_version,
            dict(spec.params),
            tuple(spec.parents),
            digest,
            size,
            self.location_of(aid),
            spec.content_digest,
        )
        self._catalog(info, created)
        return PutResult(info, created)

    def _catalog(self, info: ArtifactInfo, created: bool) -> None:
        """The catalog row and, for new bytes, an outbox entry in one transaction: the entry
        stays until the ArtifactRecorded is on the log (`announced`), so a put whose event
        never landed is completed by the next put of the same artifact."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "INSERT OR IGNORE INTO artifacts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        info.id,
                        info.kind,
                        info.code_version,
                        canonical_json(info.params),
                        info.digest,
                        info.size,
                        info.content_digest,
                    ),
                )
                self._db.executemany(
                    "INSERT OR IGNORE INTO edges VALUES (?, ?)",
                    [(info.id, p) for p in info.parents],
                )
                # New bytes, or bytes a put left behind when it died between linking the file
                # and this transaction (the file is there, its row is not): either way no
                # ArtifactRecorded can have been published yet, so the outbox must hold it.
                if created or row.rowcount == 1:
                    self._db.execute("INSERT OR IGNORE INTO unannounced VALUES (?)", [info.id])
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def unannounced(self, artifact_id: str) -> bool:
        """True while the artifact's ArtifactRecorded has not been confirmed on the log."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM unannounced WHERE id = ?", [artifact_id]
            ).fetchone()
        return row is not None

    def announced(self, artifact_id: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM unannounced WHERE id = ?", [artifact_id])

    def _catalog_digest(self, aid: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT digest FROM artifacts WHERE id = ?", [aid]).fetchone()
        return None if row is None else str(row[0])

    # -- reading ---------------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A full ID from a full ID or a unique prefix of >= 8 hex characters."""
        ref = ref.strip().lower()
        if len(ref) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ref):
            raise ArtifactNotFound(
                f"{ref!r} is not an artifact ID or a prefix of >= 8 hex characters"
            )
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM artifacts WHERE id >= ? AND id < ? ORDER BY id LIMIT 5",
                [ref, ref + "g"],
            ).fetchall()
        if not rows:
            raise ArtifactNotFound(f"no artifact matches {ref}")
        if len(rows) > 1:
            ids = ", ".join(r[0][:16] for r in rows)
            raise ArtifactNotFound(f"{ref} is ambiguous: {ids}", hint="give more characters")
        return str(rows[0][0])

    def info(self, ref: str) -> ArtifactInfo:
        aid = self.resolve(ref)
        with self._lock:
            row = self._db.execute(
                "SELECT id, kind, code_version, params, digest, size, content_digest "
                "FROM artifacts WHERE id = ?",
                [aid],
            ).fetchone()
            parents = self._db.execute(
                "SELECT parent FROM edges WHERE child = ? ORDER BY parent", [aid]
            ).fetchall()
        return ArtifactInfo(
            row[0],
            row[1],
            row[2],
            json.loads(row[3]),
            tuple(p[0] for p in parents),
            row[4],
            row[5],
            self.location_of(aid),
            row[6],
        )

    def exists(self, artifact_id: str) -> bool:
        return self._catalog_digest(artifact_id) is not None

    def read_bytes(self, ref: str, recorded: str | None = None) -> bytes:
        """The artifact's bytes, verified against the catalog's digest and, when given,
        against `recorded`: the digest its signed ArtifactRecorded states (the catalog is as
        writable as the blobs, so only the signed record is evidence)."""
        info = self.info(ref)
        path = self.path_of(info.id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ArtifactMissing(info.id, path) from None
        actual = hashlib.sha256(data).hexdigest()
        expected = recorded or info.digest
        if actual != expected or info.digest != expected:
            raise ArtifactCorrupted(info.id, expected, actual)
        return data

    def copy_to(self, ref: str, out: BinaryIO, recorded: str | None = None) -> str:
        """Stream the bytes into `out` in bounded memory; ArtifactCorrupted after the copy if
        they do not hash to the expected digest (the caller discards `out` then)."""
        info = self.info(ref)
        path = self.path_of(info.id)
        try:
            f = open(path, "rb")  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            raise ArtifactMissing(info.id, path) from None
        with f:
            actual, _ = stream_digest(f, copy_to=out)
        expected = recorded or info.digest
        if actual != expected or info.digest != expected:
            raise ArtifactCorrupted(info.id, expected, actual)
        return actual

    def where(self, artifact_id: str) -> str:
        return str(self.path_of(artifact_id))

    def blob_digest(self, artifact_id: str) -> str | None:
        try:
            return _hash_path(self.path_of(artifact_id))
        except FileNotFoundError:
            return None

    def read_recorded(self, artifact_id: str, recorded: str) -> bytes:
        """The bytes of an artifact about to be used (deployed, served): they must hash to
        `recorded`, the digest its signed ArtifactRecorded states; ArtifactError otherwise."""
        if not recorded:
            raise ArtifactUnrecorded(artifact_id)
        return self.read_bytes(artifact_id, recorded)

    def all_ids(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute("SELECT id FROM artifacts ORDER BY id")]

    def lineage(self, ref: str, direction: str = "both", max_depth: int = 10) -> list[LineageNode]:
        """Ancestors (negative depth) and/or descendants (positive), breadth first, depth-capped."""
        root = self.resolve(ref)
        out: list[LineageNode] = []
        plans = []
        if direction in ("both", "up"):
            plans.append(("SELECT parent FROM edges WHERE child = ? ORDER BY parent", -1))
        if direction in ("both", "down"):
            plans.append(("SELECT child FROM edges WHERE parent = ? ORDER BY child", 1))
        for sql, sign in plans:
            seen = {root}
            queue = deque([(root, 0)])
            while queue:
                node, depth = queue.popleft()
                if depth >= max_depth:
                    continue
                with self._lock:
                    nexts = [r[0] for r in self._db.execute(sql, [node])]
                for n in nexts:
                    if n in seen:
                        continue
                    seen.add(n)
                    out.append(LineageNode(n, self._kind(n), sign * (depth + 1), node))
                    queue.append((n, depth + 1))
        return out

    def _kind(self, aid: str) -> str:
        with self._lock:
            row = self._db.execute("SELECT kind FROM artifacts WHERE id = ?", [aid]).fetchone()
        return "?" if row is None else str(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _hash_path(path: Path) -> str:
    with open(path, "rb") as f:
        return stream_digest(f)[0]


def _link_once(tmp: Path, final: Path) -> bool:
    """Place tmp at final unless something is already there. True if placed."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        return False
    return True
