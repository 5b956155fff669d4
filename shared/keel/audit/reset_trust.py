"""`keel audit reset-trust`: a deliberate restore, declared and recorded (issue 33, item 3).

After a restore from an older copy the log no longer extends the checkpoints signed before, so
the projector refuses to sign (RewriteRefused) and nothing is checkpointed again. A reset:

1. brings the views to the log's end and asks the projector to sign; if it would, there is
   nothing to reset (refused: a reset is never a routine step);
2. appends a TrustReset naming the checkpoints the log no longer extends and the reason,
   signed by the trail's admin key (a person's key kept off the service machines: the audit
   key, which every projector host holds, must not be able to excuse its own rewrite);
3. sets the default local witness's held notes aside (kept under reset/, never deleted);
4. signs a checkpoint over the restored log, the reset included.

A crash between 2 and 4 leaves the reset recorded and the refusal in place: run it again (a
second TrustReset says so). Witnesses outside the home (files, HTTP witnesses) still hold the
old checkpoints and keep reporting the restored log as rewritten: a reset answers for this
home only, and every answer after it says it happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from keel import keyring_admin
from keel.artifacts.codeversion import code_version
from keel.audit.anchors import RewriteRefused, default_witness
from keel.audit.projector import Progress
from keel.audit.projectors import projector_for
from keel.bootstrap import Runtime
from keel.errors import KeelError
from keel.events import envelope
from keel.events import generated as g
from keel.signing import ADMIN_IDENTITY, admin_key


@dataclass(frozen=True)
class Reset:
    event: g.TrustReset
    set_aside: list[str]  # the witness's notes moved to reset/
    progress: Progress


def reset_trust(rt: Runtime, admin_dir: Path, reason: str) -> Reset:
    if not reason.strip():
        raise KeelError("a trust reset needs a reason", hint='--reason "what was restored, why"')
    try:
        projector_for(rt).run()
    except RewriteRefused as refused:
        return _reset(rt, admin_dir, reason, refused)
    raise KeelError(
        "nothing to reset: the log extends every checkpoint held (log, views, default witness)",
        hint="a reset is only for a deliberate restore the checkpoint writer refuses to sign",
    )


def _reset(rt: Runtime, admin_dir: Path, reason: str, refused: RewriteRefused) -> Reset:
    witness = default_witness(rt)
    ring = keyring_admin.trail(rt).ring
    keyring_admin._same_admin(ring, admin_dir)  # the trail's admin, or a clear refusal
    local = admin_key(admin_dir, create=False)
    if local is None or not ring.admins:
        raise KeelError(
            "a trust reset is signed by the trail's admin key, and "
            + ("the trail records no keyring" if not ring.admins else f"{admin_dir} holds none"),
            hint="set KEEL_ADMIN_DIR to the admin key's directory (`keel keys record` records "
            "the keyring first on a home without one)",
        )
    key, private = local
    event = g.TrustReset(
        envelope=envelope(
            "TrustReset",
            subject="keyring",  # with the keyring: the admin's ordered partition
            service=ADMIN_IDENTITY,
            code_version=code_version("keel"),
            actor=rt.settings.who(),
            correlation_id="trust-reset",
        ),
        reason=reason,
        refusal=str(refused),
        anchors=tuple(
            g.SetAsideCheckpoint(
                held_by=a.source, origin=a.note.origin, size=a.note.size, root=a.note.root.hex()
            )
            for a in refused.anchors
        ),
    )
    keyring_admin._publish(rt, key, private, [event])
    notes = witness.store.set_aside(witness.namespace) if witness is not None else []
    progress = projector_for(rt, reset=True).run()
    return Reset(event, notes, progress)
