"""A witness's memory in a directory: per namespace (a home, or a log key), the latest
checkpoint note held per tree origin, and every conflicting pair it was offered.

    <root>/<namespace>/held/<origin>.note          the note held (signed-note text)
    <root>/<namespace>/conflicts/<stamp>-<id>.json {"held", "offered", "detail", "at"}
    <root>/<namespace>/reset/<stamp>/...           notes set aside by `keel audit reset-trust`

Used by the default local witness (outside KEEL_HOME, in the user's state directory) and by
`keel audit witness serve`. Files are replaced atomically (write, then rename), so a crash
leaves the old note or the new one, never half of either.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.errors import KeelError


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class WitnessStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def where(self, namespace: str) -> Path:
        return self.root / _safe(namespace)

    def held(self, namespace: str) -> dict[str, str]:
        """origin -> the note held for it."""
        d = self.where(namespace) / "held"
        try:
            files = sorted(d.glob("*.note"))
            return {
                text.split("\n", 1)[0]: text
                for f in files
                for text in [f.read_text(encoding="utf-8")]
            }
        except OSError as exc:
            raise KeelError(
                f"cannot read the witness's checkpoints in {d}: {exc}",
                hint="check the directory's permissions (KEEL_WITNESS_DIR sets where it is)",
            ) from exc

    def hold(self, namespace: str, note: str) -> None:
        origin = note.split("\n", 1)[0]
        try:
            _write(self.where(namespace) / "held" / f"{_safe(origin)}.note", note)
        except OSError as exc:
            raise KeelError(
                f"cannot write the witness's checkpoint under {self.where(namespace)}: {exc}",
                hint="the default witness lives outside KEEL_HOME (KEEL_WITNESS_DIR, else "
                "$XDG_STATE_HOME/keel/witness): make it writable",
            ) from exc

    def conflict(self, namespace: str, held: str, offered: str, detail: str) -> Path:
        """Keep a conflicting pair for good (never overwritten): it is the evidence."""
        digest = hashlib.sha256((held + offered).encode()).hexdigest()[:12]
        path = self.where(namespace) / "conflicts" / f"{_stamp()}-{digest}.json"
        doc = {"held": held, "offered": offered, "detail": detail, "at": _stamp()}
        _write(path, json.dumps(doc, indent=2) + "\n")
        return path

    def conflicts(self, namespace: str) -> list[dict[str, Any]]:
        d = self.where(namespace) / "conflicts"
        out = []
        for f in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                out.append({"file": f.name, **json.loads(f.read_text(encoding="utf-8"))})
            except (OSError, ValueError) as exc:
                out.append({"file": f.name, "error": str(exc)})
        return out

    def set_aside(self, namespace: str) -> list[str]:
        """Move the held notes under reset/<stamp>/ (kept, no longer anchors); returns them."""
        held_dir = self.where(namespace) / "held"
        if not held_dir.is_dir():
            return []
        dest = self.where(namespace) / "reset" / _stamp()
        dest.mkdir(parents=True, exist_ok=True)
        notes = []
        for f in sorted(held_dir.glob("*.note")):
            notes.append(f.read_text(encoding="utf-8"))
            os.replace(f, dest / f.name)
        return notes
