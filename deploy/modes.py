"""Which mode (secured or open) a component's stored state was made for, and the decision to
refuse a start in the other one.

Kafka's storage is formatted once, with the SCRAM users of a secured stack or without them, and
Redis keeps the views folded on the stack it served: a secured start on an open stack's
storage never lets a client in (issue 35: "Kafka ... did not answer within 90 s"), and an open
start on a secured stack's storage serves views and ACLs nobody checks any more. So each
component records its mode beside its data when the data is first made, and a start in the
other mode stops at once and says what to do."""

from __future__ import annotations

from pathlib import Path

SECURED, OPEN = "secured", "open"
MODE_FILE = "mode"


def name(secure: bool) -> str:
    return SECURED if secure else OPEN


def recorded(root: Path) -> str | None:
    """The mode written beside a component's data, None when it wrote none."""
    try:
        text = (root / MODE_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return text if text in (SECURED, OPEN) else None


def record(root: Path, secure: bool) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / MODE_FILE).write_text(name(secure) + "\n")


def conflict(component: str, root: Path, have: str | None, secure: bool) -> str | None:
    """Why `component`, whose data in `root` was made for mode `have` (None: no data yet), must
    not start in the mode `secure` asks for; None when it may."""
    want = name(secure)
    if have is None or have == want:
        return None
    why = (
        "its storage was formatted without the SCRAM users a secured broker signs clients in "
        "with, so no client would ever get in"
        if component == "Kafka" and want == SECURED
        else "its data was made on a stack with the other security settings"
    )
    return (
        f"{component} in {root} holds data made for the {have} stack, and this start asks "
        f"for the {want} one: {why}"
    )


def advice(stack_dir: Path, have: str) -> str:
    """What to do about a mode conflict in the stack directory `stack_dir`."""
    again = (
        "start it open again (`make up INSECURE=1`, or `up --insecure`)"
        if have == OPEN
        else "start it secured again (`make up` without INSECURE, `up` without --insecure)"
    )
    return (
        f"{again}; or discard its data first: `make down`, then `rm -rf {stack_dir}` (deletes "
        "the events, views, artifacts and secrets kept there) and `make up` in the mode you "
        "want; or keep both, each in its own directory on its own ports "
        "(`python -m deploy.launcher up --dir DIR --kafka-port N ...`)"
    )
