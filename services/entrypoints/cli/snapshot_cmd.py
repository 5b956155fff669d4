"""`keel audit snapshot`: the audit views as they stand, into a snapshot an audit API replica
starts from (keel.audit.snapshot), on demand."""

from __future__ import annotations

from pathlib import Path

import typer

from keel_services.entrypoints.cli.common import console, handled, print_json
from keel_services.entrypoints.container import build

JsonOpt = typer.Option(False, "--json", help="print JSON")


@handled
def snapshot(
    to: Path | None = typer.Option(
        None, "--to", help="directory of snapshots (default: KEEL_HOME/snapshots/<log>)"
    ),
    keep: int = typer.Option(3, "--keep", min=1, help="snapshots kept, newest first"),
    json_out: bool = JsonOpt,
) -> None:
    """Snapshot the audit views at the log position they stand at, with a manifest signed by
    the audit key: a new audit API replica starts from the newest snapshot that verifies and
    folds only the tail. The views must stand at a checkpoint (`keel audit project` folds and
    signs one); nothing is folded here."""
    from keel.audit import snapshot as sn
    from keel.audit import snapshot_store

    with build(create=False) as app:
        rt = app.rt
        directory = to or sn.snapshot_dir(rt.settings)
        path = sn.write(rt.views, directory, rt.signer, keep=keep)
        manifest = sn.parse_manifest(path.with_suffix(".note").read_text())
        # on a shared log: into the artifact store too, recorded on the log (issue 35)
        stored = snapshot_store.record(rt, path) if snapshot_store.wanted(rt) else None
    doc = {
        "stored": None
        if stored is None
        else {"views": stored.views_artifact, "manifest": stored.manifest_artifact},
        "snapshot": str(path),
        "manifest": str(path.with_suffix(".note")),
        "events": manifest.events,
        "bytes": manifest.nbytes,
        "sha256": manifest.digest,
    }
    if json_out:
        print_json(doc)
    else:
        console.print(
            f"views at {manifest.events:,} log positions -> {path} ({manifest.nbytes:,} bytes, "
            f"sha256 {manifest.digest[:16]}..., signed by the audit key)"
        )
