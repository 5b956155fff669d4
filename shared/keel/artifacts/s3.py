"""Artifacts in an S3-compatible object store (`KEEL_ARTIFACTS=s3://bucket/prefix`).

The same contract as the local store (tests/contract/artifactstore_contract.py), so services on
different machines share models and datasets by ID. Layout under the prefix:

  objects/ab/cdef…      the bytes, written once: PUT with `If-None-Match: *` (the server refuses
                        an overwrite with 412, so two writers of one ID cannot replace each other)
  meta/<id>.json        the catalog row: kind, code version, params, parents, digest, size
  children/<p>/<id>     an empty marker per parent edge (lineage downwards is a prefix listing)
  unannounced/<id>      the outbox: present until the artifact's ArtifactRecorded is on the log

An artifact exists once its meta object does; the bytes go first, so a reader never finds a
catalogued artifact without them (a crash in between is completed by the next put of that ID).
Bytes stream through a spooled temporary file while they are hashed (bounded memory), and are
hashed again on every read. The endpoint and credentials come from the standard AWS variables
(AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from the log.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any, BinaryIO
from urllib.parse import urlparse

from keel.artifacts.ids import ArtifactSpec, canonical_json, stream_digest
from keel.artifacts.store import (
    MIN_PREFIX,
    ArtifactConflict,
    ArtifactCorrupted,
    ArtifactError,
    ArtifactInfo,
    ArtifactMissing,
    ArtifactNotFound,
    ArtifactUnrecorded,
    LineageNode,
    LocalArtifactStore,
    PutResult,
    Puts,
    check_kind,
)
from keel.errors import ConfigError

SPOOL_IN_MEMORY = 8 << 20  # larger bodies spill to a temporary file while they are hashed
CHUNK = 1 << 20


def parse_url(url: str) -> tuple[str, str]:
    """s3://bucket[/prefix] -> (bucket, prefix without slashes)."""
    parts = urlparse(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError(
            f"KEEL_ARTIFACTS={url!r} is not an s3://bucket[/prefix] URL",
            hint="e.g. KEEL_ARTIFACTS=s3://keel-artifacts/team-a (endpoint in AWS_ENDPOINT_URL)",
        )
    return parts.netloc, parts.path.strip("/")


class S3ArtifactStore(Puts):
    def __init__(
        self, url: str, client: Any = None, create_bucket: bool = True, principal: str = ""
    ) -> None:
        """principal: who this process is to a secured object store (Settings.principal);
        empty: the environment's KEEL_PRINCIPAL, else a person's."""
        from keel.extras import need

        need("s3", "boto3")
        import boto3
        from botocore.config import Config

        self.url = url
        self.bucket, prefix = parse_url(url)
        self.prefix = f"{prefix}/" if prefix else ""
        # A session of its own: credentials are read from the environment now, not cached from
        # the first client this process made (boto3's default session would). On a secured
        # stack this process's principal has credentials of its own (keel.secure.credentials).
        self.s3 = client or boto3.session.Session().client(
            "s3",
            **_client_settings(principal),
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 5, "mode": "standard"},
                # checksums only when required: S3-compatible servers differ in what they accept
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._meta: dict[str, dict[str, Any]] = {}  # artifacts are immutable: safe to cache
        self._first_versions: dict[str, str] = {}
        self._lock = threading.Lock()
        if create_bucket:
            self._ensure_bucket()

    # -- keys ------------------------------------------------------------------------------
    def key_of(self, artifact_id: str) -> str:
        return f"{self.prefix}{LocalArtifactStore.location_of(artifact_id)}"

    location_of = staticmethod(LocalArtifactStore.location_of)

    def _meta_key(self, aid: str) -> str:
        return f"{self.prefix}meta/{aid}.json"

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _status(exc) != 404:
                raise _explained(exc, f"bucket {self.bucket}") from None
            try:
                self.s3.create_bucket(Bucket=self.bucket)
            except ClientError as again:
                if _code(again) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise _explained(again, f"creating bucket {self.bucket}") from None

    # -- writing ---------------------------------------------------------------------------
    def put_stream(self, spec: ArtifactSpec, source: BinaryIO) -> PutResult:
        """Store the bytes under spec.id. Same bytes again: no-op. Other bytes: ArtifactConflict."""
        check_kind(spec.kind)
        aid = spec.id
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            digest, size = stream_digest(source, copy_to=spool)  # type: ignore[arg-type]
            if spec.content_digest is not None and spec.content_digest != digest:
                raise ArtifactError(
                    f"source bytes changed while being stored (expected {spec.content_digest[:16]},"
                    f" read {digest[:16]})",
                    hint="do not modify the file while Keel reads it; run the command again",
                )
            known = self._read_meta(aid)
            if known is not None:
                if known["digest"] != digest:
                    raise ArtifactConflict(aid, known["digest"], digest)
                return PutResult(self._info(known), False)
            spool.seek(0)
            placed = self._put_once(self.key_of(aid), spool, {"sha256": digest})
        if not placed:  # the bytes are there (an earlier put died before its catalog row)
            stored = self._object_digest(aid)
            if stored != digest:
                raise ArtifactConflict(aid, stored or "?", digest)
        meta = {
            "id": aid,
            "kind": spec.kind,
            "code_version": spec.code_version,
            "params": json.loads(canonical_json(dict(spec.params))),
            "parents": list(spec.parents),
            "digest": digest,
            "size": size,
            "content_digest": spec.content_digest,
        }
        # outbox and edges before the meta object: once meta exists, the rest is there
        self._put_once(f"{self.prefix}unannounced/{aid}", b"", {})
        for p in spec.parents:
            self._put_once(f"{self.prefix}children/{p}/{aid}", b"", {})
        self._put_once(self._meta_key(aid), canonical_json(meta).encode(), {})
        with self._lock:
            self._meta[aid] = meta
        return PutResult(self._info(meta), True)

    def _put_once(self, key: str, body: Any, metadata: dict[str, str]) -> bool:
        """PUT unless the key exists (If-None-Match: *). True if this call placed it."""
        from botocore.exceptions import ClientError

        try:
            self.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body, Metadata=metadata, IfNoneMatch="*"
            )
        except ClientError as exc:
            if _status(exc) in (409, 412):  # exists (412), or a concurrent put of it (409)
                return False
            raise _explained(exc, f"writing {key}") from None
        return True

    def unannounced(self, artifact_id: str) -> bool:
        return self._exists(f"{self.prefix}unannounced/{artifact_id}")

    def announced(self, artifact_id: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=f"{self.prefix}unannounced/{artifact_id}")

    # -- reading ---------------------------------------------------------------------------
    def _read_meta(self, aid: str) -> dict[str, Any] | None:
        with self._lock:
            if aid in self._meta:
                return self._meta[aid]
        body = self._get(self._meta_key(aid))
        if body is None:
            return None
        meta: dict[str, Any] = json.loads(body)
        with self._lock:
            self._meta[aid] = meta
        return meta

    def _info(self, meta: dict[str, Any]) -> ArtifactInfo:
        return ArtifactInfo(
            meta["id"],
            meta["kind"],
            meta["code_version"],
            dict(meta["params"]),
            tuple(sorted(meta["parents"])),
            meta["digest"],
            int(meta["size"]),
            self.location_of(meta["id"]),
            meta.get("content_digest"),
        )

    def resolve(self, ref: str) -> str:
        ref = ref.strip().lower()
        if len(ref) < MIN_PREFIX or any(c not in "0123456789abcdef" for c in ref):
            raise ArtifactNotFound(
                f"{ref!r} is not an artifact ID or a prefix of >= 8 hex characters"
            )
        listed = self.s3.list_objects_v2(
            Bucket=self.bucket, Prefix=f"{self.prefix}meta/{ref}", MaxKeys=5
        )
        ids = [
            str(o["Key"]).rsplit("/", 1)[1].removesuffix(".json")
            for o in listed.get("Contents", [])
        ]
        if not ids:
            raise ArtifactNotFound(f"no artifact matches {ref}")
        if len(ids) > 1:
            shown = ", ".join(i[:16] for i in sorted(ids))
            raise ArtifactNotFound(f"{ref} is ambiguous: {shown}", hint="give more characters")
        return ids[0]

    def info(self, ref: str) -> ArtifactInfo:
        aid = ref if len(ref) == 64 and self._read_meta(ref) is not None else self.resolve(ref)
        meta = self._read_meta(aid)
        if meta is None:
            raise ArtifactNotFound(f"no artifact matches {ref}")
        return self._info(meta)

    def exists(self, artifact_id: str) -> bool:
        return self._read_meta(artifact_id) is not None

    def read_bytes(self, ref: str, recorded: str | None = None) -> bytes:
        """The bytes, hashed as they arrive and checked against the catalog's digest and, when
        given, `recorded` (the digest its signed ArtifactRecorded states)."""
        info = self.info(ref)
        data = self._get(self.key_of(info.id))
        if data is None:
            raise ArtifactMissing(info.id, f"object {self.key_of(info.id)}")
        actual = hashlib.sha256(data).hexdigest()
        expected = recorded or info.digest
        if actual != expected or info.digest != expected:
            raise ArtifactCorrupted(info.id, expected, actual)
        return data

    def copy_to(self, ref: str, out: BinaryIO, recorded: str | None = None) -> str:
        """Stream the bytes into `out` in bounded memory; raises ArtifactCorrupted after the
        copy if they do not hash to the expected digest (the caller discards `out` then)."""
        from botocore.exceptions import ClientError

        info = self.info(ref)
        try:
            body = self._get_object(self.key_of(info.id))["Body"]
        except ClientError as exc:
            if _status(exc) == 404:
                raise ArtifactMissing(info.id, f"object {self.key_of(info.id)}") from None
            raise _explained(exc, f"reading {info.id[:16]}") from None
        h = hashlib.sha256()
        for chunk in body.iter_chunks(CHUNK):
            h.update(chunk)
            out.write(chunk)
        expected = recorded or info.digest
        if h.hexdigest() != expected or info.digest != expected:
            raise ArtifactCorrupted(info.id, expected, h.hexdigest())
        return h.hexdigest()

    def read_recorded(self, artifact_id: str, recorded: str) -> bytes:
        if not recorded:
            raise ArtifactUnrecorded(artifact_id)
        return self.read_bytes(artifact_id, recorded)

    def blob_digest(self, artifact_id: str) -> str | None:
        """sha256 of the stored bytes (None: the object is gone), read in bounded memory."""
        return self._object_digest(artifact_id)

    def where(self, artifact_id: str) -> str:
        return f"object {self.key_of(artifact_id)}"

    def all_ids(self) -> list[str]:
        return sorted(
            k.rsplit("/", 1)[1].removesuffix(".json") for k in self._keys(f"{self.prefix}meta/")
        )

    def lineage(self, ref: str, direction: str = "both", max_depth: int = 10) -> list[LineageNode]:
        root = self.resolve(ref)
        out: list[LineageNode] = []
        steps = []
        if direction in ("both", "up"):
            steps.append((self._parents, -1))
        if direction in ("both", "down"):
            steps.append((self._children, 1))
        for nexts_of, sign in steps:
            seen = {root}
            queue = deque([(root, 0)])
            while queue:
                node, depth = queue.popleft()
                if depth >= max_depth:
                    continue
                for n in sorted(nexts_of(node)):
                    if n in seen:
                        continue
                    seen.add(n)
                    meta = self._read_meta(n)
                    out.append(
                        LineageNode(n, meta["kind"] if meta else "?", sign * (depth + 1), node)
                    )
                    queue.append((n, depth + 1))
        return out

    def _parents(self, aid: str) -> list[str]:
        meta = self._read_meta(aid)
        return list(meta["parents"]) if meta else []

    def _children(self, aid: str) -> list[str]:
        return [k.rsplit("/", 1)[1] for k in self._keys(f"{self.prefix}children/{aid}/")]

    def close(self) -> None:
        with self._lock:
            self._meta.clear()

    # -- S3 helpers ------------------------------------------------------------------------
    def _get_object(self, key: str) -> Any:
        """The object's first version. Keel writes each key once (If-None-Match); in a bucket
        with versioning and object lock (the launcher's), anyone overwriting a key only adds
        a later version, and Keel keeps reading the bytes that were recorded."""
        version = self._first_versions.get(key)
        if version is None:
            version = self._first_version(key)
            if version:
                with self._lock:
                    self._first_versions[key] = version
        extra = {"VersionId": version} if version else {}
        return self.s3.get_object(Bucket=self.bucket, Key=key, **extra)

    def _first_version(self, key: str) -> str:
        from botocore.exceptions import ClientError

        try:
            listed = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key, MaxKeys=1000)
        except ClientError:
            return ""  # no versions to ask for (or not allowed to): the plain object
        # newest first (S3's order): the last one with this exact key is the first written
        versions = [v for v in listed.get("Versions", []) if v["Key"] == key]
        vid = str(versions[-1].get("VersionId") or "") if versions else ""
        return "" if vid == "null" or len(versions) < 2 else vid

    def _keys(self, prefix: str) -> Iterator[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _get(self, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            data: bytes = self._get_object(key)["Body"].read()
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise _explained(exc, f"reading {key}") from None
        return data

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404:
                return False
            raise _explained(exc, f"checking {key}") from None
        return True

    def _object_digest(self, aid: str) -> str | None:
        from botocore.exceptions import ClientError

        try:
            body = self._get_object(self.key_of(aid))["Body"]
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise _explained(exc, f"reading {aid[:16]}") from None
        h = hashlib.sha256()
        for chunk in body.iter_chunks(CHUNK):
            h.update(chunk)
        return h.hexdigest()


def _client_settings(principal: str = "") -> dict[str, str]:
    """For the object store at AWS_ENDPOINT_URL when the stack's secrets cover it: this process
    principal's keys (else boto3 reads AWS_ACCESS_KEY_ID & co) and, over HTTPS, the stack's CA
    to check the server's certificate against."""
    from urllib.parse import urlparse

    from keel.secure.credentials import process_principal, secrets_for
    from keel.settings import Settings

    endpoint = urlparse(Settings.s3_endpoint())
    if not endpoint.hostname:
        return {}
    secrets = secrets_for(endpoint.hostname, endpoint.port or 443)
    if secrets is None:
        return {}
    out: dict[str, str] = {}
    if endpoint.scheme == "https" and secrets.ca.is_file():
        out["verify"] = str(secrets.ca)
    principal = principal or process_principal()
    if secrets.has("s3", principal):
        out.update(secrets.s3(principal))
    return out


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _code(exc: Any) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _explained(exc: Any, what: str) -> ArtifactError:
    code, status = _code(exc), _status(exc)
    hint = (
        "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and what that identity may do"
        if status in (401, 403)
        else "check AWS_ENDPOINT_URL and that the object store is up"
    )
    return ArtifactError(f"object store refused {what}: {code or status}", hint=hint)
