"""What a new checkpoint must extend (issue 33, item 3): the last checkpoint held by the log
(its audit topic), by the views, and by the home's default local witness outside KEEL_HOME.
The projector signs a tree only when it extends every one of them; otherwise it raises
RewriteRefused and signs nothing, so a rewrite is never re-signed by the next command.

The default local witness is written before every checkpoint is appended to the log, so it
always holds a checkpoint at least as new as the log's (a crash between the two leaves the
witness one step ahead, which the same tree still extends).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from keel.audit import checkpoint as cp
from keel.audit import keys
from keel.audit.witness import Anchor, home_id
from keel.audit.witness_store import WitnessStore
from keel.codec import Codec, CodecError
from keel.errors import KeelError
from keel.events import decode_event
from keel.events import generated as g
from keel.log.port import EventLog
from keel.settings import Settings
from keel.signing import Trust
from keel.topics import AUDIT_TOPIC
from keel.views.port import ViewStore

if TYPE_CHECKING:
    from keel.bootstrap import Runtime

logger = logging.getLogger(__name__)

NOTES = keys.NOTES  # views: {"topic/partition": note} of the last checkpoint
RESET_HINT = (
    "find out who changed the log (compare it with a backup or replica and with "
    "`keel audit verify`); if you restored an older copy deliberately, declare it with "
    '`keel audit reset-trust --reason "..."` (signed by the admin key, KEEL_ADMIN_DIR): it is '
    "recorded, shown by every answer after it, and the old checkpoints are kept"
)


class RewriteRefused(KeelError):
    """The log's trees do not extend a checkpoint already signed: nothing was signed.
    `anchors`: the checkpoints it no longer extends."""

    def __init__(self, message: str, hint: str = "", anchors: tuple[Anchor, ...] = ()) -> None:
        super().__init__(message, hint)
        self.anchors = anchors


@dataclass(frozen=True)
class LocalWitness:
    """The home's default witness: a WitnessStore namespace outside KEEL_HOME."""

    store: WitnessStore
    namespace: str

    @classmethod
    def for_home(cls, settings: Settings, trust: Trust) -> LocalWitness | None:
        """None where the project has no audit key (nothing is signed, nothing to witness)."""
        audit = sorted(
            (k for k in trust.keys.values() if k.identity == cp.AUDIT_IDENTITY),
            key=lambda k: (k.created, k.id),
        )
        if not audit:
            return None
        ns = home_id(audit[0].public, settings.log_locator())
        return cls(WitnessStore(settings.witness_root()), ns)

    @property
    def where(self) -> str:
        return str(self.store.where(self.namespace))

    def notes(self) -> list[str]:
        return list(self.store.held(self.namespace).values())

    def hold(self, notes: Iterable[str]) -> None:
        for note in notes:
            self.store.hold(self.namespace, note)


def latest_log_checkpoint(log: EventLog, codec: Codec, window: int = 8) -> g.Checkpoint | None:
    """The newest checkpoint among the audit topic's last few records (a bounded read)."""
    ends = log.end_offsets([AUDIT_TOPIC])
    start = {tp: max(0, end - window) for tp, end in ends.items()}
    latest = None
    for rec in log.read([AUDIT_TOPIC], start, window):
        try:
            event = decode_event(codec, rec.value)
        except CodecError:
            continue  # `verify` reports it
        if isinstance(event, g.Checkpoint):
            latest = event  # log order: the last appended wins
    return latest


def gather(
    log: EventLog,
    codec: Codec,
    views: ViewStore,
    trust: Trust,
    witness: LocalWitness | None,
) -> list[Anchor]:
    """Every checkpoint note a new tree must extend; notes whose audit signature fails are left
    out (they prove nothing, and `verify` reports them)."""
    texts: list[tuple[str, str]] = []
    latest = latest_log_checkpoint(log, codec)
    if latest is not None:
        texts += [("in the log", t.note) for t in latest.trees]
    texts += [("in the views", n) for n in (views.get(NOTES) or {}).values()]
    if witness is not None:
        texts += [(f"the default witness ({witness.where})", n) for n in witness.notes()]
    out = []
    for source, text in texts:
        try:
            note = cp.parse(str(text))
        except ValueError as exc:
            logger.warning("checkpoint %s unreadable (%s): not an anchor", source, exc)
            continue
        if cp.check(note, trust) is None:
            out.append(Anchor(source, note))
        else:
            logger.warning("checkpoint %s not signed by an audit key: not an anchor", source)
    return out


def default_witness(rt: Runtime) -> LocalWitness | None:
    """The runtime's home's default local witness (None without an audit key)."""
    return LocalWitness.for_home(rt.settings, rt.trust)
