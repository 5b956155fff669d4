"""Getting an artifact's bytes out of the store into a file, verified, without surprises.

The bytes are copied into a temporary file beside the destination, checked against the digest
(the catalog's, and the signed record's when the caller has it) and only then renamed into
place: a reader of the destination never sees partial or unverified bytes. The rename replaces
a symbolic link at the destination instead of writing through it, so a link planted there
cannot redirect the write to another file.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import BinaryIO

from keel.artifacts.ids import file_digest
from keel.artifacts.port import ArtifactStore
from keel.errors import KeelError

WRITTEN, UNCHANGED, REPLACED = "written", "unchanged", "replaced"


def write_artifact(
    store: ArtifactStore,
    ref: str,
    dest: Path,
    *,
    replace: bool = False,
    recorded: str | None = None,
) -> str:
    """Put the artifact's verified bytes at dest. Returns WRITTEN (nothing was there),
    UNCHANGED (the same bytes were there) or REPLACED (other bytes or a link were, and
    `replace` allowed it). Without `replace`, anything else at dest is refused."""
    info = store.info(ref)
    if dest.exists() and not dest.is_symlink() and not dest.is_file():
        raise KeelError(
            f"{dest} is a directory or a special file, not a regular file",
            hint="give the path of the file to write, e.g. dir/name.bin",
        )
    state = _state(dest, info.digest)
    if state == UNCHANGED:
        return UNCHANGED
    if state == REPLACED and not replace:
        what = "a symbolic link" if dest.is_symlink() else "a file with other bytes"
        raise KeelError(
            f"{dest} is already {what}, not artifact {info.id[:16]}",
            hint="choose another --out, or pass --force to replace it (a link is replaced "
            "itself; what it points to is left alone)",
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.keel-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            store.copy_to(info.id, out, recorded)  # raises after the copy if the bytes differ
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would surprise the file's users
        os.replace(tmp, dest)  # replaces a link itself, never its target
    finally:
        tmp.unlink(missing_ok=True)
    return state


def cat_artifact(store: ArtifactStore, ref: str, out: BinaryIO | None = None) -> None:
    """Write the artifact's bytes to out (stdout by default) once they are verified: they are
    spooled to a temporary file first, so corrupted bytes never reach the reader."""
    target = out if out is not None else sys.stdout.buffer
    with tempfile.TemporaryFile(prefix="keel-cat-") as spool:
        store.copy_to(ref, spool)
        spool.seek(0)
        shutil.copyfileobj(spool, target)
    target.flush()


def _state(dest: Path, digest: str) -> str:
    if dest.is_symlink():
        return REPLACED  # never read through a link either
    if not dest.exists():
        return WRITTEN
    return UNCHANGED if file_digest(dest)[0] == digest else REPLACED


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
