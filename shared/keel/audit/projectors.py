"""The one place a Projector is built: which log and views it folds, which events it trusts, who
signs its checkpoints and which witness they must extend are decided here, not at each caller.

Every caller with a runtime asks `projector_for(rt, ...)` and names what it wants the fold to
publish (`checkpoints`); `assemble` is the same call for a reader that holds the parts but no
runtime (FreshViews' watcher). tests/unit/test_architecture.py keeps `Projector(` in this module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from keel.audit.anchors import LocalWitness, default_witness
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.port import EventLog
from keel.signing import Signer, Trust
from keel.views.port import ViewStore

if TYPE_CHECKING:
    from keel.bootstrap import Runtime

# "sign": the runtime's signer signs checkpoints, checked against and written to the home's
#   default witness (a command on the embedded home, the projector service, rebuild, reset).
# "embedded": as "sign" on the embedded log; on a shared log (Kafka) only the projector service
#   publishes, so a command folds without signing (it would fence the service's writer).
# "none": fold only, never publish (a reader's replica, verify's fresh fold, a replay as of R).
Checkpoints = Literal["sign", "embedded", "none"]


def projector_for(
    rt: Runtime,
    views: ViewStore | None = None,
    *,
    log: EventLog | None = None,
    checkpoints: Checkpoints = "sign",
    as_of_ms: int | None = None,
    reset: bool = False,
) -> Projector:
    """A projector over the runtime's log (or `log`) into its views (or `views`). Events are
    folded only when their signatures check against the runtime's trust, whatever publishes.

    as_of_ms: replay only what the log had recorded by then, without trees (a past answer
    needs no checkpoint); reset: sign without checking the anchors (only reset-trust, which
    records it)."""
    if as_of_ms is not None and checkpoints != "none":
        raise ValueError("a replay as of a time publishes no checkpoint: checkpoints='none'")
    signer = {"sign": rt.signer, "embedded": rt.checkpoint_signer, "none": None}[checkpoints]
    return assemble(
        log if log is not None else rt.log,
        views if views is not None else rt.views,
        rt.codec,
        rt.trust,
        signer=signer,
        witness=default_witness(rt) if checkpoints != "none" else None,
        as_of_ms=as_of_ms,
        reset=reset,
        fold=rt.settings.fold or "auto",
    )


def assemble(
    log: EventLog,
    views: ViewStore,
    codec: Codec,
    trust: Trust | None,
    *,
    signer: Signer | None = None,
    witness: LocalWitness | None = None,
    name: str = "audit",
    as_of_ms: int | None = None,
    reset: bool = False,
    fold: str | None = None,
) -> Projector:
    """A projector from its parts; trust None: the signer's, or unsigned mode without one;
    fold: the fold core (None: KEEL_FOLD)."""
    return Projector(
        log,
        views,
        codec,
        name=name,
        as_of_ms=as_of_ms,
        trees=as_of_ms is None,
        signer=signer,
        trust=trust,
        witness=witness,
        reset=reset,
        fold=fold,
    )
