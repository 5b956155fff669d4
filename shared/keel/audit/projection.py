"""The audit views as a pure fold: `evolve(docs, event) -> Change`.

`keys_for(event)` names the documents an event reads; the runner loads them (from its batch
cache or the ViewStore) and `evolve` returns the documents to write and the index entries to add.
No I/O here, so the fold is tested alone and replayed anywhere.

Views (keys):
  artifact:{id}        kind, parents, code version, params; index children:{id}  (lineage)
  dataset:{id}, featureset:{id}, model:{id}                                 (model lineage)
  decision:{event_id}  + index registry:{family} by time                    (registry history)
  deployment:{event_id} + index serving:{family}:{env} by time              (serving intervals)
  index models:{family}, datasets:{family}, artifacts:{kind}, artifacts:*   (inventory lists)
  quarantine:{family}  counts by rule                                        (quarantine summary)
  projector:stats      events applied (each event exactly once)
  trust:resets         every TrustReset (`keel audit reset-trust`), shown by answers after it

What the services and commands read (keel.audit.reads):
  event:{event_id}     the event itself, for the pipeline's low-volume facts (EVENT_DOCS)
  index caused:{id}    "Type:event_id" of every event whose causation is `id` (what followed)
  pending:{id}         a pending promotion's reviews, approvers and whether it concluded
  open:{family}:{env}  the pending promotions still waiting there
  closed:{family}:{env}:{id}  that the list concluded promotion id (never listed again)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import singledispatch
from typing import Any

import orjson

from keel.audit import index_order, keys
from keel.audit.queries import Decision, decision_doc
from keel.audit.resets import TRUST_RESETS, reset_doc
from keel.events import generated as g
from keel.signing import ADOPTED
from keel.timeparse import CLOCK_SKEW_MS
from keel.views.port import IndexAdd

STATS = keys.STATS
# What the views hold changes with Keel's code now and then (2: the read model's documents,
# decision 0014; 3: serving members ordered by recorded time and log position, decision 0020;
# 4: registry members and a model's decisions ordered likewise; 5: every list and "latest"
# field in the log's order, not the read's, decision 0035; 6: a waiting list's concluded
# promotions in a marker each, not in the list); views folded by an older shape are rebuilt,
# not read half-filled.
SHAPE = keys.SHAPE
SHAPE_VERSION = 6


@dataclass
class Change:
    docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    index: list[IndexAdd] = field(default_factory=list)
    recorded_ms: int = 0  # when the log stored the event (0: not known: its business time)
    at_ms: float = 0.0  # the event's business time (ms), worked out once per event
    position: int = 0  # where the log stored it (its offset): orders what was recorded alike
    adopted: bool = False  # unsigned, admitted inside an adopted prefix (decision 0022)


def times(change: Change) -> dict[str, Any]:
    """Both times of an event for the views: business (`since`/`at` elsewhere) and recorded,
    and whether it was written into the past (recorded later than the clock-skew allowance)."""
    occurred = int(change.at_ms)
    recorded = change.recorded_ms or occurred
    out = {
        "recorded_ms": recorded,
        "recorded_at": datetime.fromtimestamp(recorded / 1000, UTC).isoformat(),
        "backdated": recorded - occurred > CLOCK_SKEW_MS,
    }
    if change.adopted:  # every answer built from the event says no key signed it
        out["signed_by"] = ADOPTED
    return out


def order(change: Change, event_id: str) -> str:
    """Where the event sits in the log's own order (decision 0035): recorded time, log
    position, event ID - the member decision 0020's indexes use, fixed width so that it
    compares as text. A fold keeps lists and "latest" fields in this order, never in arrival
    order: on Kafka a read interleaves partitions and topics differently every time, and a
    rebuild, a replica and verify's fold must give the same views from the same log."""
    return index_order.member(event_id, change.recorded_ms or int(change.at_ms), change.position)


def _newest(old: dict[str, Any], at: str, entries: list[IndexAdd], change: Change) -> bool:
    """Whether the event at `at` (`order`) is newer than every event that wrote document `old`
    before (its `written_by`); adds those of its index `entries` whose index holds no newer
    writer's entry for the document (`entries_by`, kept in `old`). Documents several events
    write wholesale (the same artifact, dataset, feature set or model recorded again) then hold
    the newest record's fields and scores whatever order the records were read in."""
    written = dict(old.get("entries_by", {}))
    for entry in entries:
        if at > written.get(entry.index, ""):
            written[entry.index] = at
            change.index.append(entry)
    old["entries_by"] = written
    return at > str(old.get("written_by", ""))


def ms(event: Any) -> float:
    return float(int(event.envelope.occurred_at.timestamp() * 1000))


FAMILIES = keys.FAMILIES


def keys_for(event: Any) -> list[str]:
    return [STATS, FAMILIES, *_keys(event)]


def evolve(
    docs: dict[str, dict[str, Any] | None],
    event: Any,
    recorded_ms: int = 0,
    position: int = 0,
    adopted: bool = False,
) -> Change:
    """What applying `event` (stored by the log at `recorded_ms`, offset `position`) to `docs`
    writes. `docs` holds every key of keys_for(event). adopted: an unsigned event of adopted
    history (its documents say `signed_by: adopted unsigned history`)."""
    change = Change(recorded_ms=recorded_ms, at_ms=ms(event), position=position, adopted=adopted)
    stats = dict(docs.get(STATS) or {"applied": 0, "by_type": {}})
    stats["applied"] += 1
    by_type = dict(stats["by_type"])
    by_type[event.EVENT_TYPE] = by_type.get(event.EVENT_TYPE, 0) + 1
    stats["by_type"] = by_type
    change.docs[STATS] = stats
    family = getattr(event, "family", None)
    known = (docs.get(FAMILIES) or {}).get("families", [])
    if family and family not in known:
        change.docs[FAMILIES] = {"families": sorted([*known, family])}
    _apply(event, docs, change)
    eid = event.envelope.event_id
    if event.EVENT_TYPE in EVENT_DOCS:
        copy = {"type": event.EVENT_TYPE, "event": event.to_avro()}
        change.docs[keys.event(eid)] = {**copy, "signed_by": ADOPTED} if adopted else copy
    cause = event.envelope.causation_id
    if cause:
        change.index.append(IndexAdd(keys.caused(cause), f"{event.EVENT_TYPE}:{eid}", change.at_ms))
    return change


# The facts services look up as typed events: each is rare next to deployments and decisions
# (whose documents above already hold what is read of them), so the copies stay small.
EVENT_DOCS = frozenset(
    {
        "DatasetIngested",
        "RetrainRequested",
        "FeaturesBuilt",
        "ModelTrained",
        "ModelEvaluated",
        "PromotionPending",
        "PromotionReviewed",
        "SchemaReconciled",
        "SchemaReconciliationFailed",
        "TrainingFailed",
    }
)


@singledispatch
def _keys(event: Any) -> list[str]:
    return []


@singledispatch
def _apply(event: Any, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    """Event types without a view change only the stats."""


def _doc(docs: dict[str, dict[str, Any] | None], change: Change, key: str) -> dict[str, Any]:
    """The latest version of a document within this change (a copy, safe to modify)."""
    if key in change.docs:
        return change.docs[key]
    return dict(docs.get(key) or {})


def _json(text: str) -> Any:
    """Parsed as the views store and read documents (orjson, ~4x the stdlib): an integer
    past 64 bits becomes a float here rather than failing the document's write later; the
    standard library reads what orjson refuses (NaN, Infinity), which are stored as null."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


# -- lineage ------------------------------------------------------------------------------------
@_keys.register
def _(e: g.ArtifactRecorded) -> list[str]:
    return [keys.artifact(e.artifact_id)]


@_apply.register
def _(e: g.ArtifactRecorded, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    key = keys.artifact(e.artifact_id)
    # Children live in an index per parent, not in the parent's document: a dataset with
    # thousands of descendants must not be rewritten each time one more appears. Inventory:
    # newest first by kind and over all kinds (`keel artifacts list`).
    entries = [IndexAdd(keys.children(p), e.artifact_id, change.at_ms) for p in e.parents]
    entries.append(IndexAdd(keys.artifacts(e.kind), e.artifact_id, change.at_ms))
    entries.append(IndexAdd(keys.ALL_ARTIFACTS, e.artifact_id, change.at_ms))
    doc = _doc(docs, change, key)
    at = order(change, e.envelope.event_id)
    if not _newest(doc, at, entries, change):
        change.docs[key] = doc  # recorded again earlier in the log: only its entries count
        return
    change.docs[key] = {
        "id": e.artifact_id,
        "kind": e.kind,
        "parents": list(e.parents),
        "code_version": e.code_version,
        "params": _json(e.params_json),
        "digest": e.digest,
        "size": e.size,
        "recorded_at": e.envelope.occurred_at.isoformat(),
        "written_by": at,
        "entries_by": doc["entries_by"],
    }


# -- data, features, models --------------------------------------------------------------------
@_keys.register
def _(e: g.DatasetIngested) -> list[str]:
    return [keys.dataset(e.dataset_id), keys.quarantine(e.family)]


@_apply.register
def _(e: g.DatasetIngested, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    key = keys.dataset(e.dataset_id)
    doc = _doc(docs, change, key)
    at = order(change, e.envelope.event_id)
    entry = IndexAdd(keys.datasets(e.family), e.dataset_id, change.at_ms)
    if _newest(doc, at, [entry], change):
        change.docs[key] = _dataset(e, at, doc["entries_by"])
    else:  # the same dataset ingested again earlier in the log: its counts still add up
        change.docs[key] = doc
    q = _doc(docs, change, keys.quarantine(e.family))
    q["records_in"] = q.get("records_in", 0) + e.records_in
    q["accepted"] = q.get("accepted", 0) + e.accepted
    change.docs[keys.quarantine(e.family)] = q


def _dataset(e: g.DatasetIngested, at: str, entries_by: dict[str, str]) -> dict[str, Any]:
    return {
        "id": e.dataset_id,
        "family": e.family,
        "source": e.source_name,
        "period": e.period,
        "records_in": e.records_in,
        "accepted": e.accepted,
        "quarantined": e.quarantined,
        "quarantine_batch_id": e.quarantine_batch_id,
        "contract": e.contract_fingerprint,
        "at": e.envelope.occurred_at.isoformat(),
        "event_id": e.envelope.event_id,
        "written_by": at,
        "entries_by": entries_by,
    }


@_keys.register
def _(e: g.RecordQuarantined) -> list[str]:
    return [keys.quarantine(e.family)]


@_apply.register
def _(e: g.RecordQuarantined, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    q = _doc(docs, change, keys.quarantine(e.family))
    q["quarantined"] = q.get("quarantined", 0) + 1
    rules = dict(q.get("by_rule", {}))
    rules[e.rule] = rules.get(e.rule, 0) + 1
    q["by_rule"] = rules
    change.docs[keys.quarantine(e.family)] = q


@_keys.register
def _(e: g.FeaturesBuilt) -> list[str]:
    return [keys.featureset(e.feature_set_id)]


@_apply.register
def _(e: g.FeaturesBuilt, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    key = keys.featureset(e.feature_set_id)
    doc = _doc(docs, change, key)
    at = order(change, e.envelope.event_id)
    if not _newest(doc, at, [], change):
        change.docs[key] = doc  # built again earlier in the log (the service says it again)
        return
    change.docs[key] = {
        "id": e.feature_set_id,
        "family": e.family,
        "dataset_ids": list(e.dataset_ids),
        "stats_id": e.feature_stats_id,
        "transform": e.transform,
        "code_version": e.code_version,
        "rows": e.rows,
        "event_id": e.envelope.event_id,
        "written_by": at,
        "entries_by": doc["entries_by"],
    }


@_keys.register
def _(e: g.ModelTrained) -> list[str]:
    return [keys.model(e.model_id)]


@_apply.register
def _(e: g.ModelTrained, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    m = _doc(docs, change, keys.model(e.model_id))
    at = order(change, e.envelope.event_id)
    entry = IndexAdd(keys.models(e.family), e.model_id, change.at_ms)
    if _newest(m, at, [entry], change):
        m.pop("signed_by", None)  # an older record's (adopted) says nothing of this one
        m.update(_trained(e, change), written_by=at)
    m.setdefault("id", e.model_id)
    m.setdefault("evaluations", [])
    m.setdefault("decisions", [])
    change.docs[keys.model(e.model_id)] = m


def _trained(e: g.ModelTrained, change: Change) -> dict[str, Any]:
    return dict(
        id=e.model_id,
        family=e.family,
        feature_set_ids=list(e.feature_set_ids),
        trainer=e.trainer,
        params=dict(e.params),
        code_version=e.code_version,
        trained_at=e.envelope.occurred_at.isoformat(),
        event_id=e.envelope.event_id,
        **times(change),
    )


@_keys.register
def _(e: g.ModelEvaluated) -> list[str]:
    return [keys.model(e.model_id)]


@_apply.register
def _(e: g.ModelEvaluated, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    m = _doc(docs, change, keys.model(e.model_id))
    evals = list(m.get("evaluations", []))
    at = order(change, e.envelope.event_id)
    evals.append(
        {
            "eval_report_id": e.eval_report_id,
            "eval_dataset_id": e.eval_dataset_id,
            "metrics": dict(e.metrics),
            "at": e.envelope.occurred_at.isoformat(),
            "event_id": e.envelope.event_id,
            **times(change),
            "order": at,
        }
    )
    # oldest first in the log's order: answers take the last as the model's latest metrics
    m["evaluations"] = sorted(evals, key=lambda x: x["order"])
    m.setdefault("id", e.model_id)
    change.docs[keys.model(e.model_id)] = m


# -- registry and serving ----------------------------------------------------------------------
def _decision_keys(e: Decision) -> list[str]:
    wanted = [keys.model(e.model_id)]
    pid = _pending_id(e)
    if pid:
        wanted += [
            keys.pending(pid),
            keys.open_pending(e.family, e.env),
            keys.closed_pending(e.family, e.env, pid),
        ]
    return wanted


def _pending_id(e: Decision) -> str | None:
    if isinstance(e, g.PromotionPending):
        return e.envelope.event_id
    if isinstance(e, g.PromotionReviewed | g.ModelPromoted):
        return e.pending_event_id
    return None


def _pending(e: Decision, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    """A pending promotion's state: its reviews and approvers, and whether it concluded
    (promoted once approved enough, or declined); `open:{family}:{env}` lists the waiting."""
    pid = _pending_id(e)
    if pid is None:
        return
    p = _doc(docs, change, keys.pending(pid))
    p.setdefault("reviews", [])
    p.setdefault("approvers", [])
    p.setdefault("concluded", False)
    at = order(change, e.envelope.event_id)
    if isinstance(e, g.PromotionReviewed):
        # reviews and approvers in the log's order (decision 0035), each review's place kept
        reviewed = dict(p.get("review_order", {}))
        reviewed[e.envelope.event_id] = [at, e.verdict, e.envelope.actor]
        p["review_order"] = reviewed
        p["reviews"] = sorted(reviewed, key=lambda r: reviewed[r][0])
        approvers: list[str] = []
        for r in p["reviews"]:
            _, verdict, actor = reviewed[r]
            if verdict == "approved" and actor not in approvers:
                approvers.append(actor)
        p["approvers"] = approvers
        if e.verdict == "rejected":
            p["concluded"] = True
    elif isinstance(e, g.ModelPromoted):
        p["concluded"] = True
    change.docs[keys.pending(pid)] = p
    # The waiting list of the event's family/env, decided by that list's own events alone
    # (decision 0035): a promotion is listed from its earliest event in the log's order (its
    # PromotionPending, unless a review of it was recorded before) until an event of the list
    # concludes it (ModelPromoted, a rejection), and never again. Asking the pending's global
    # state instead made the list depend on which partition was read first when a promotion's
    # events name different families/envs (the pipeline never writes that; a signed writer may).
    # Which promotions the list concluded is kept beside it, one marker a promotion
    # (`closed:{family}:{env}:{id}`, views shape 6): the list itself holds only what waits, so
    # a decision reads and writes documents of a bounded size however long the history.
    waiting = _doc(docs, change, keys.open_pending(e.family, e.env))
    places = dict(waiting.get("order", {}))
    marker = keys.closed_pending(e.family, e.env, pid)
    closed = bool(_doc(docs, change, marker))
    concludes = isinstance(e, g.ModelPromoted) or (
        isinstance(e, g.PromotionReviewed) and e.verdict == "rejected"
    )
    if concludes:
        places.pop(pid, None)
        if not closed:
            change.docs[marker] = {"closed": True}
    elif not closed:
        places[pid] = min(places.get(pid, at), at)
    change.docs[keys.open_pending(e.family, e.env)] = {
        "pending": sorted(places, key=lambda i: places[i]),  # oldest first
        "order": places,
    }


def _decision(e: Decision, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    eid = e.envelope.event_id
    when = times(change)
    change.docs[keys.decision(eid)] = {**decision_doc(e), **when}
    # Decisions at one business time in the order the log recorded them, as deployments are
    # (keel.audit.index_order): the member leads with the recorded time and log position.
    member = index_order.member(eid, when["recorded_ms"], change.position)
    change.index.append(IndexAdd(keys.registry(e.family), member, change.at_ms))
    m = _doc(docs, change, keys.model(e.model_id))
    m.setdefault("id", e.model_id)
    # The model's decisions (event IDs) in the index's order, (business time, member), not by
    # arrival: on Kafka the registry's partitions interleave differently on every read, and a
    # fold must give the same views whatever the interleaving (`keel audit verify` compares
    # the views with a fresh fold); the member is a function of the record, not of the read.
    order = {**m.get("decision_order", {}), eid: [change.at_ms, member]}
    m["decision_order"] = order
    m["decisions"] = sorted(order, key=lambda d: (order[d][0], order[d][1]))
    change.docs[keys.model(e.model_id)] = m
    _pending(e, docs, change)


for _type in (g.ModelPromoted, g.PromotionRejected, g.PromotionPending, g.PromotionReviewed):
    _keys.register(_type)(_decision_keys)
    _apply.register(_type)(_decision)


@_apply.register
def _(e: g.ModelDeployed, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    eid = e.envelope.event_id
    when = times(change)
    change.docs[keys.deployment(eid)] = {
        "event_id": eid,
        "family": e.family,
        "env": e.env,
        "model_id": e.model_id,
        "manifest_id": e.manifest_id,
        "eval_report_id": e.eval_report_id,
        "promotion_event_id": e.promotion_event_id,
        "previous_model_id": e.previous_model_id,
        "kind": e.kind,
        "reason": e.reason,
        "causation_id": e.envelope.causation_id,
        "since": e.envelope.occurred_at.isoformat(),
        "actor": e.envelope.actor,
        **when,
    }
    # An interval ends where the next deployment of the same environment begins: one index
    # floor lookup answers "what served at T", whatever order the events arrived in. The
    # member leads with the recorded time and log position: deployments at one business time
    # are in recorded order in the index itself (keel.audit.index_order), and "as known at
    # R" walks read the recorded time from the index alone.
    member = index_order.member(eid, when["recorded_ms"], change.position)
    change.index.append(IndexAdd(keys.serving(e.family, e.env), member, change.at_ms))


# -- trust resets ------------------------------------------------------------------------------
@_keys.register
def _(e: g.TrustReset) -> list[str]:
    return [TRUST_RESETS]


@_apply.register
def _(e: g.TrustReset, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    # every reset kept, oldest first: answers show the newest, and how many there were
    resets = list(_doc(docs, change, TRUST_RESETS).get("resets", []))
    at = order(change, e.envelope.event_id)
    resets.append(reset_doc(e, recorded_at=times(change)["recorded_at"], order=at))
    # oldest first in the log's order (decision 0035): answers show the last one
    change.docs[TRUST_RESETS] = {"resets": sorted(resets, key=lambda r: r["order"])}


# -- training/serving skew -----------------------------------------------------------------
@_apply.register
def _(e: g.ServingStatsRecorded, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    eid = e.envelope.event_id
    change.docs[keys.serving_stats(eid)] = {
        "event_id": eid,
        "family": e.family,
        "env": e.env,
        "model_id": e.model_id,
        "window_start": e.window_start,
        "window_end": e.window_end,
        "requests": e.requests,
        "stats": json.loads(e.stats_json),
    }
    end = datetime.fromisoformat(e.window_end).timestamp() * 1000
    change.index.append(IndexAdd(keys.skew(e.family, e.env), eid, end))


@_apply.register
def _(e: g.DriftDetected, docs: dict[str, dict[str, Any] | None], change: Change) -> None:
    eid = e.envelope.event_id
    change.docs[keys.drift(eid)] = {
        "event_id": eid,
        "family": e.family,
        "env": e.env,
        "model_id": e.model_id,
        "stats_event_id": e.stats_event_id,
        "at": e.envelope.occurred_at.isoformat(),
        "psi_threshold": e.psi_threshold,
        "ks_pvalue_threshold": e.ks_pvalue_threshold,
        "features": [
            {"feature": f.feature, "psi": f.psi, "ks_statistic": f.ks_statistic,
             "ks_pvalue": f.ks_pvalue, "kind": f.kind, "test": f.test}
            for f in e.features
        ],
    }  # fmt: skip
    change.index.append(IndexAdd(keys.drifts(e.family, e.env), eid, change.at_ms))
