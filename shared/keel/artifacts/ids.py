"""Artifact IDs: a hash of *what went in*, computed before the work runs.

ID = sha256("keel-artifact-v1\\n" + canonical JSON of {kind, code_version, params, sorted input
IDs, content digest}). Same inputs and code give the same ID on any machine, in any dict order;
any change of any input gives another ID. The bytes' own digest is recorded separately and
checked on every write and read.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from keel.errors import KeelError

_ID_DOMAIN = b"keel-artifact-v1\n"
CHUNK = 1 << 20


class NotCanonical(KeelError):
    hint = "params must be JSON-like: str, int, finite float, bool, None, lists and str-keyed dicts"


def _check(value: Any, path: str) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise NotCanonical(
                f"param {path} is {value}: NaN and infinities have no canonical form"
            )
        return value
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise NotCanonical(f"param {path} has a non-string key {k!r}")
            out[k] = _check(v, f"{path}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [_check(v, f"{path}[{i}]") for i, v in enumerate(value)]
    raise NotCanonical(f"param {path} is a {type(value).__name__} ({value!r:.60})")


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8, shortest float repr: one text per value."""
    return json.dumps(
        _check(value, "$"),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )


@dataclass(frozen=True)
class ArtifactSpec:
    """Everything that determines an artifact, known before it is produced."""

    kind: str
    code_version: str
    params: Mapping[str, Any] = field(default_factory=dict)
    inputs: Sequence[str] = ()
    content_digest: str | None = None  # for raw data: the digest of the source bytes

    @property
    def id(self) -> str:
        return artifact_id(
            self.kind, self.code_version, self.params, self.inputs, self.content_digest
        )

    @property
    def parents(self) -> list[str]:
        return sorted(set(self.inputs))


def artifact_id(
    kind: str,
    code_version: str,
    params: Mapping[str, Any],
    inputs: Sequence[str] = (),
    content_digest: str | None = None,
) -> str:
    if not kind:
        raise NotCanonical("artifact kind is empty", hint="give a kind such as model or dataset")
    doc = {
        "kind": kind,
        "code_version": code_version,
        "params": params,
        "inputs": sorted(set(inputs)),
        "content_digest": content_digest,
    }
    return hashlib.sha256(_ID_DOMAIN + canonical_json(doc).encode("utf-8")).hexdigest()


def stream_digest(source: BinaryIO, copy_to: BinaryIO | None = None) -> tuple[str, int]:
    """sha256 and size of a stream, in bounded memory (one reusable 1 MiB buffer), optionally
    copying the bytes to `copy_to` on the way (one read for hashing and storing)."""
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while n := source.readinto(view):  # type: ignore[attr-defined]
        h.update(view[:n])
        if copy_to is not None:
            copy_to.write(view[:n])
        size += n
    return h.hexdigest(), size


def file_digest(path: Path) -> tuple[str, int]:
    try:
        with open(path, "rb") as f:
            return stream_digest(f)
    except OSError as exc:
        raise KeelError(
            f"cannot read {path}: {exc.strerror or exc}",
            hint="the file must stay in place and readable while Keel reads it",
        ) from None
