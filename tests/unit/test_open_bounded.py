"""The waiting list `open:{family}:{env}` holds what is waiting, not the history (views shape 6).

Shape 5 kept a `closed` list of every promotion ever concluded in the family/env inside the
waiting list and rewrote the whole list on every decision: with 5,000 promotions in one
family/env either core spent 146-215 us an event, growing without bound. Here both cores (the
specification, projection.evolve, and the native keel_fold) fold one family/env's history of
many concluded promotions and one still waiting into real SQLite views: the stored waiting list
must be the same size as after one concluded promotion (its entries are fixed width), and the
two cores' views equal.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keel import signing
from keel.audit import foldcore
from keel.events import envelope
from keel.events import generated as g
from keel.log.port import LogRecord
from keel.views import docjson
from keel.views.sqlite import SqliteViewStore
from tests.unit.test_native_fold import CODEC

pytestmark = pytest.mark.unit

T0 = 1_700_000_000_000
AT = datetime(2024, 1, 1, tzinfo=UTC)
CONCLUDED = 300


def _env(kind: str, eid: str) -> g.Envelope:
    return envelope(kind, subject="fam", service="t", code_version="c", actor="ann",
                    correlation_id="r", occurred_at=AT, event_id=eid)  # fmt: skip


def _decisions(pid: str, model: str, concluded: bool) -> list[Any]:
    """A promotion waiting for approval, reviewed, then (if `concluded`) promoted or declined."""
    out: list[Any] = [
        g.PromotionPending(
            envelope=_env("PromotionPending", pid), family="fam", model_id=model, env="prod",
            eval_report_id="r", metrics={}, gates=[], incumbent_metrics={}, reason="why",
            approvals_required=1,
        ),
        g.PromotionReviewed(
            envelope=_env("PromotionReviewed", f"{pid}-r"), family="fam", model_id=model,
            env="prod", pending_event_id=pid, verdict="approved", reason="ok",
        ),
    ]  # fmt: skip
    if concluded and int(pid[1:]) % 2:  # declined
        out.append(
            g.PromotionReviewed(
                envelope=_env("PromotionReviewed", f"{pid}-x"), family="fam", model_id=model,
                env="prod", pending_event_id=pid, verdict="rejected", reason="no",
            )
        )  # fmt: skip
    elif concluded:
        out.append(
            g.ModelPromoted(
                envelope=_env("ModelPromoted", f"{pid}-p"), family="fam", model_id=model,
                env="prod", eval_report_id="r", metrics={}, gates=[], incumbent_metrics={},
                reason="ok", pending_event_id=pid,
            )
        )  # fmt: skip
    return out


def history(concluded: int) -> list[LogRecord]:
    """`concluded` promotions concluded in fam/prod, then one left waiting; a late review of
    the first (concluded) one last: it must not list it again."""
    events: list[Any] = []
    for i in range(concluded):
        events += _decisions(f"p{i}", f"m{i}", concluded=True)
    events += _decisions("pw", "mw", concluded=False)
    events.append(
        g.PromotionReviewed(
            envelope=_env("PromotionReviewed", "late"), family="fam", model_id="m0",
            env="prod", pending_event_id="p0", verdict="approved", reason="late",
        )
    )  # fmt: skip
    return [
        LogRecord("registry", 0, i, "fam", T0 + i, CODEC.encode(e.EVENT_TYPE, e.to_avro()),
                  None, recorded_ms=T0 + i)
        for i, e in enumerate(events)
    ]  # fmt: skip


def fold(core: foldcore.PythonCore, views: SqliteViewStore, records: list[LogRecord]) -> None:
    for start in range(0, len(records), 64):  # batches, the cache kept as the projector does
        decoded = core.decode_fold(records[start : start + 64])
        index, puts = core.evolve(decoded, [(d, False) for d in decoded], views)
        views.apply([*index, *puts])


def waiting(views: SqliteViewStore) -> int:
    """The stored size of the waiting list (bytes of its JSON)."""
    return len(docjson.dumps(views.get("open:fam:prod")))


@pytest.mark.parametrize("core", [foldcore.PythonCore, foldcore.NativeCore])
def test_the_waiting_list_does_not_grow_with_concluded_promotions(
    core: type[foldcore.PythonCore], tmp_path: Path
) -> None:
    one = SqliteViewStore(tmp_path / "one.db")
    many = SqliteViewStore(tmp_path / "many.db")
    fold(core(CODEC, signing.Trust()), one, history(1))
    folding = core(CODEC, signing.Trust())
    fold(folding, many, history(CONCLUDED))
    assert views_pending(many) == ["pw"]  # only the one waiting, the late review lists nothing
    assert waiting(many) == waiting(one)
    if isinstance(folding, foldcore.NativeCore):  # it folds these events itself, as the spec
        assert folding._fold.folded == len(history(CONCLUDED))
        spec = SqliteViewStore(tmp_path / "spec.db")
        fold(foldcore.PythonCore(CODEC, signing.Trust()), spec, history(CONCLUDED))
        assert many.snapshot() == spec.snapshot()


def views_pending(views: SqliteViewStore) -> list[str]:
    return list((views.get("open:fam:prod") or {}).get("pending", []))
