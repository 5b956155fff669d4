"""Released schema versions are frozen: `schemas/events/released.json` pins their fingerprints.

A file listed there whose fingerprint changes was edited after release, which breaks every event
already written with it; `keel schemas check` fails on that. New files are unreleased until
`keel schemas release` pins them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from keel.schemas.registry import SchemaRegistry

LOCK_NAME = "released.json"


@dataclass(frozen=True)
class ReleaseProblem:
    file: str
    problem: str

    def __str__(self) -> str:
        return f"{self.file}: {self.problem}"


def read_lock(events_dir: Path) -> dict[str, str]:
    path = events_dir / LOCK_NAME
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def check_released(
    registry: SchemaRegistry, events_dir: Path
) -> tuple[list[ReleaseProblem], list[str]]:
    """(problems with released files, files not yet released)."""
    lock = read_lock(events_dir)
    current = {
        v.path.name: v.fingerprint_hex for name in registry.names() for v in registry.history(name)
    }
    problems = []
    for file, fp in sorted(lock.items()):
        if file not in current:
            problems.append(ReleaseProblem(file, "released version was deleted; restore it"))
        elif current[file] != fp:
            problems.append(
                ReleaseProblem(
                    file,
                    f"released version was edited (fingerprint {fp} -> {current[file]}); "
                    "revert it and add a new version file instead",
                )
            )
    unreleased = sorted(set(current) - set(lock))
    return problems, unreleased


def release_all(registry: SchemaRegistry, events_dir: Path) -> list[str]:
    """Pin every current file not yet released; returns the newly pinned names."""
    lock = read_lock(events_dir)
    added = []
    for name in registry.names():
        for v in registry.history(name):
            if v.path.name not in lock:
                lock[v.path.name] = v.fingerprint_hex
                added.append(v.path.name)
    text = json.dumps(dict(sorted(lock.items())), indent=2) + "\n"
    (events_dir / LOCK_NAME).write_text(text, encoding="utf-8")
    return added
