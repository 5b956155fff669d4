"""A registered version's model files, when Keel can read them, as one deterministic tar: the
same files give the same bytes (sorted names, no times, owners or modes but 0644), so the
model artifact's digest is a digest of the model itself and `keel audit verify` checks it.

Sources Keel reads: a local path or file:// URI (the bridge beside the artifact root), an
`mlflow-artifacts:` URI (through the tracking server's artifact proxy), and the two indirections
MLflow 3 writes into versions, `models:/m-<id>` (a logged model) and `runs:/<run>/<path>`,
which the tracking server resolves to one of those. Anything else (s3://, gs://, dbfs:/ ...) is
`Unreadable`, saying so: Keel holds no credentials for another store."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from keel_services.mlflow_bridge.tracking import Tracking, Unreadable

MLMODEL = "MLmodel"
MAX_HOPS = 3  # models:/ -> runs:/ -> a location: never more


@dataclass
class ModelFiles:
    tar: Path  # the deterministic tar, in a temporary file the caller removes
    location: str  # where the files were read (the source after resolving indirections)
    files: list[dict[str, Any]] = field(default_factory=list)  # path, sha256, size
    mlmodel: bytes | None = None  # the MLmodel file's bytes, if there is one


class _Hashing:
    """A read-only stream that hashes what it hands on (a file's digest while tar copies it)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha = hashlib.sha256()
        self.keep: bytearray | None = None

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.sha.update(data)
        if self.keep is not None:
            self.keep.extend(data)
        return data


def _locate(source: str, tracking: Tracking | None) -> str:
    """The location the source names, MLflow's indirections resolved."""
    for _ in range(MAX_HOPS):
        if source.startswith("models:/m-"):
            if tracking is None:
                raise Unreadable(f"{source} is a logged model: no [mlflow] tracking_uri to ask")
            source = tracking.logged_model_uri(source.removeprefix("models:/").split("/")[0])
        elif source.startswith("runs:/"):
            if tracking is None:
                raise Unreadable(f"{source} names a run: no [mlflow] tracking_uri to ask")
            run_id, _, rest = source.removeprefix("runs:/").partition("/")
            source = tracking.run_artifact_uri(run_id).rstrip("/") + ("/" + rest if rest else "")
        else:
            return source
    raise Unreadable(f"{source}: more than {MAX_HOPS} indirections")


def _local(location: str) -> Path | None:
    parsed = urllib.parse.urlparse(location)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" and location.startswith("/"):
        return Path(location)
    return None


def _local_files(root: Path) -> Iterator[tuple[str, int, Any]]:
    if root.is_file():
        yield root.name, root.stat().st_size, root.open
        return
    if not root.is_dir():
        raise Unreadable(f"{root} does not exist on the bridge's machine")
    for dirpath, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            yield rel, path.stat().st_size, path.open


def _proxied(location: str, tracking: Tracking | None) -> Iterator[tuple[str, int, Any]]:
    if tracking is None:
        raise Unreadable(f"{location} is served by a tracking server: no [mlflow] tracking_uri")
    # mlflow-artifacts:/p and mlflow-artifacts://host:port/p both name the server's path p
    path = urllib.parse.urlparse(location).path
    for rel, size in sorted(tracking.proxied_files(path)):
        full = f"{path.rstrip('/')}/{rel}"

        def opener(mode: str = "rb", full: str = full) -> Any:
            return tracking.open_proxied(full)

        yield rel, size, opener


def fetch(source: str, tracking: Tracking | None, workdir: Path | None = None) -> ModelFiles:
    """The version's files as a deterministic tar, or Unreadable saying why not."""
    location = _locate(source, tracking)
    local = _local(location)
    if local is not None:
        entries = _local_files(local)
    elif location.startswith("mlflow-artifacts:"):
        entries = _proxied(location, tracking)
    else:
        scheme = urllib.parse.urlparse(location).scheme or location
        raise Unreadable(
            f"{location}: Keel reads local paths, file://, mlflow-artifacts:, runs:/ and "
            f"models:/m-... sources, not {scheme}:// (it holds no credentials for that store)"
        )
    fd, name = tempfile.mkstemp(prefix="keel-mlflow-", suffix=".tar", dir=workdir)
    os.close(fd)
    out = ModelFiles(Path(name), location)
    try:
        with tarfile.open(name, "w", format=tarfile.PAX_FORMAT) as tar:
            for rel, size, opener in entries:
                info = tarfile.TarInfo(rel)
                info.size, info.mode, info.mtime = size, 0o644, 0
                with opener("rb") as raw:
                    stream = _Hashing(raw)
                    if rel == MLMODEL:
                        stream.keep = bytearray()
                    tar.addfile(info, stream)  # type: ignore[arg-type]
                out.files.append({"path": rel, "sha256": stream.sha.hexdigest(), "size": size})
                if stream.keep is not None:
                    out.mlmodel = bytes(stream.keep)
        if not out.files:
            raise Unreadable(f"{location} holds no files")
    except OSError as exc:
        out.tar.unlink(missing_ok=True)
        raise Unreadable(f"cannot read {location}: {exc}") from None
    except BaseException:
        out.tar.unlink(missing_ok=True)
        raise
    return out


def mlmodel_doc(data: bytes) -> dict[str, Any]:
    """The MLmodel file as a document (YAML; PyYAML is imported only here). Without PyYAML
    this is an installation to fix, not a property of the version: MissingExtra fails the
    delivery (MLflow retries it) instead of recording the version's signature as unreadable."""
    from keel.extras import need

    need("mlflow-bridge", "yaml")
    import yaml

    try:
        doc = yaml.safe_load(data)
    except yaml.YAMLError as exc:
        raise Unreadable(f"the MLmodel file is not YAML: {exc}") from None
    if not isinstance(doc, dict):
        raise Unreadable("the MLmodel file is not a YAML mapping")
    return doc
