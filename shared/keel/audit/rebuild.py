"""What `keel audit rebuild` compares (issue 33, item 9): a rebuild folds the views again from
the log, and must never drop what the views showed without saying so (a project that created
keys over unsigned history once lost all of it silently). `shown` reads, before and after,
the families, the models and datasets by ID and the events per type; `gone` says, pure, what
the new fold no longer shows; `why_gone` counts the problems of the events the fold kept out.

`clear` drops the views for a fold from the log (`keel audit rebuild`, `keel keys adopt`), and
refuses while a projector service holds their lease (issue 35): clearing would drop the lease
with the rest, so commands would fold beside the running service and take its writer identity,
fencing it off, and the service's next batch would write into views half rebuilt.

`fold_afresh` is the rebuild itself (decision 0034): SQLite views are folded into views held
in memory (keel.views.memory; past KEEL_REBUILD_MEMORY_MB spilled into a file beside them) and
written over them in key order in one transaction, so a killed rebuild leaves them as they
were; other views (Redis) are cleared and folded in place."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from keel.audit import keys
from keel.audit.lease import LEASE_TTL_S, confirmed_holder
from keel.audit.projection import FAMILIES, STATS
from keel.audit.trees import REJECTED
from keel.errors import KeelError
from keel.views.port import ViewStore

_ALL = 2**62  # no limit: every entry of an index
# A rebuild's batch (the projector's default: 5000): each batch is a transaction whose commit
# walks every page it dirtied; 4x larger batches measured cheaper per event (decision 0034).
REBUILD_BATCH = 20_000
T = TypeVar("T")
_REASONS_READ = 10_000  # rejected records read for their reasons: enough to name the causes


def _ids(views: ViewStore, index: str) -> set[str]:
    # One read: pages by OFFSET made SQLite step over every earlier entry again for each page
    # (500k models: 4.8 s of CPU a call, 0.4 s in one; decision 0034), and a rebuild reads
    # them twice.
    return {m for m, _ in views.index_range(index, limit=_ALL)}


def shown(views: ViewStore) -> dict[str, Any]:
    """What the answers show: families, models and datasets (IDs), events folded per type."""
    families = sorted((views.get(FAMILIES) or {}).get("families", []))
    return {
        "families": families,
        "models": sorted({m for f in families for m in _ids(views, keys.models(f))}),
        "datasets": sorted({d for f in families for d in _ids(views, keys.datasets(f))}),
        "events": dict((views.get(STATS) or {}).get("by_type", {})),
    }


def counts(s: dict[str, Any]) -> dict[str, int]:
    events = s["events"]
    return {
        "families": len(s["families"]),
        "models": len(s["models"]),
        "datasets": len(s["datasets"]),
        "deployments": int(events.get("ModelDeployed", 0)),
        "events": sum(events.values()),
    }


def gone(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """One sentence per kind of thing the views showed before and no longer do."""
    out = []
    for kind in ("families", "models", "datasets"):
        lost = sorted(set(before[kind]) - set(after[kind]))
        if lost:
            shown_ids = ", ".join(x if kind == "families" else x[:12] for x in lost[:5])
            more = f" and {len(lost) - 5} more" if len(lost) > 5 else ""
            out.append(f"{len(lost)} {kind} no longer shown: {shown_ids}{more}")
    for etype, n in sorted(before["events"].items()):
        m = after["events"].get(etype, 0)
        if m < n:
            out.append(f"{etype}: {n} events shown before, {m} now")
    return out


def why_gone(views: ViewStore) -> dict[str, int]:
    """The problems of the events the fold kept out of the views (unsigned, forged...),
    counted."""
    positions = views.members(REJECTED)[:_REASONS_READ]
    docs = views.get_many([keys.rejected(p) for p in positions])
    return dict(Counter(str(d.get("problem")) for d in docs if d).most_common())


def refuse_while_served(views: ViewStore, doing: str, name: str = "audit") -> None:
    """KeelError naming the projector service that holds the views' lease, if one does."""
    served_by = confirmed_holder(views, name)  # a lease left by a killed one lapses
    if served_by is not None:
        raise KeelError(
            f"{doing} drops the views and folds them again, but the projector service "
            f"{served_by} holds them (its lease): it would be fenced off and write into views "
            "half rebuilt",
            hint="stop that projector service (`keel service run projector`: Ctrl-C or "
            "SIGTERM, which releases its lease; a killed one's lease lapses within "
            f"{LEASE_TTL_S:.0f} s), run this again, then start the service again",
        )


def clear(views: ViewStore, doing: str, name: str = "audit") -> None:
    """Drop the views for a fold from the log, unless a projector service holds them."""
    refuse_while_served(views, doing, name)
    views.clear()


def fold_afresh(
    views: ViewStore,
    fold: Callable[[ViewStore], T],
    doing: str,
    name: str = "audit",
    *,
    memory_mb: float | None = None,
) -> T:
    """`fold(target)` folds the log from its beginning into empty views `target`; the views
    become what it folded. SQLite views (those with `rebuilding`) are folded into views held
    in memory and written over the live ones in one transaction only once the fold is done: a
    crash or a failed fold leaves them whole, and readers see the old views or the new. Others are
    cleared and folded in place. Refused while a projector service holds the views, checked
    again before they are replaced (a service started meanwhile keeps its views). memory_mb:
    what the views held in memory may take (Settings.rebuild_memory_mb) before they spill into
    a file beside the live ones."""
    rebuilding = getattr(views, "rebuilding", None)
    if rebuilding is None:
        clear(views, doing, name)
        return fold(views)
    refuse_while_served(views, doing, name)
    with rebuilding() if memory_mb is None else rebuilding(memory_mb) as fresh:
        out = fold(fresh)
        refuse_while_served(views, doing, name)
        views.replace_from(fresh)  # type: ignore[attr-defined]
    return out
