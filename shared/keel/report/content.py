"""What a review pack says, as one plain document: gathered from the audit views (the same
answers `keel audit why / history / diff` give) and from the events the verified log scan kept
(reconciliation verdicts). No rendering and no I/O but the two readers passed in; the same views,
events, period and options give the same document, key for key."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import datetime
from itertools import pairwise
from typing import Any

from keel.audit import keys
from keel.audit.reads import Reads
from keel.errors import KeelError
from keel.views.port import ViewStore

ReadBytes = Callable[[str], bytes]
RECONCILIATION = ("SchemaReconciled", "SchemaReconciliationFailed")
TOP_REASONS = 5
ROWS = 5000  # deployments per environment, and decisions, one pack lists; beyond it says so


def _in(at: str, start: datetime, end: datetime) -> bool:
    when = datetime.fromisoformat(at)
    return start <= when < end


def timeline(
    views: ViewStore, family: str, env: str, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """The serving intervals of `env` that overlap [start, end), with their real bounds."""
    docs, more = Reads(views).deployments_during(family, env, start, end, limit=ROWS)
    rows = [
        {
            "model_id": d["model_id"],
            "since": d["since"],
            "until": d["until"],
            "kind": d.get("kind", "promotion"),
            "reason": d.get("reason"),
            "actor": d.get("actor"),
            "event_id": d["event_id"],
            "promotion_event_id": d.get("promotion_event_id"),
            "eval_report_id": d.get("eval_report_id"),
            "backdated": bool(d.get("backdated")),
        }
        for d in docs
    ]
    return rows, more


def decisions(
    views: ViewStore, family: str, envs: Sequence[str], start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """Every registry decision of the period in `envs` (promoted, rejected, pending, approved,
    declined), oldest first, with the eval dataset its evaluation used."""
    found, more = Reads(views).decisions_during(family, start, end, limit=ROWS)
    out = []
    for d in found:
        if d["env"] not in envs:
            continue
        model = views.get(keys.model(d["model_id"])) or {}
        ev: dict[str, Any] = next(
            (e for e in model.get("evaluations", []) if e["eval_report_id"] == d["eval_report_id"]),
            {},
        )
        out.append({**d, "eval_dataset_id": ev.get("eval_dataset_id")})
    return out, more


def quarantine_reasons(read_bytes: ReadBytes, batch_id: str | None) -> list[dict[str, Any]]:
    """The commonest (rule, field) of a quarantine batch, with one example message each."""
    if not batch_id:
        return []
    counts: Counter[tuple[str, str]] = Counter()
    example: dict[tuple[str, str], str] = {}
    for line in read_bytes(batch_id).splitlines():
        for v in json.loads(line).get("violations", []):
            key = (v.get("rule", "?"), v.get("field", "?"))
            counts[key] += 1
            example.setdefault(key, v.get("message", ""))
    top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_REASONS]
    return [{"rule": r, "field": f, "count": n, "example": example[(r, f)]} for (r, f), n in top]


def datasets(
    read: Reads, read_bytes: ReadBytes, family: str, start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(datasets ingested in the period with quarantine counts and top reasons, contract
    changes: each contract fingerprint from the dataset that first used it, the one in force
    when the period began included)."""
    docs = [
        d for d in read.views.get_many([keys.dataset(i) for i in read.datasets_of(family)]) if d
    ]
    docs.sort(key=lambda d: (d["at"], d["id"]))
    listed: list[dict[str, Any]] = []
    changes: list[dict[str, Any]] = []
    current = None
    for d in docs:
        when = datetime.fromisoformat(d["at"])
        if when >= end:
            break
        if d["contract"] != current:
            change = {"contract": d["contract"], "from_dataset": d["id"], "at": d["at"]}
            change["event_id"] = d["event_id"]
            change["previous"] = current
            if when < start:
                changes[:] = [{**change, "before_period": True}]
            else:
                changes.append({**change, "before_period": False})
            current = d["contract"]
        if when >= start:
            listed.append(
                {**d, "reasons": quarantine_reasons(read_bytes, d.get("quarantine_batch_id"))}
            )
    return listed, changes


def reconciliations(events: Sequence[Any], start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for e in events:
        env = e.envelope
        if not start <= env.occurred_at < end:
            continue
        problems = [f"{p.rule}: {p.message}" for p in getattr(e, "problems", ())]
        out.append(
            {
                "type": e.EVENT_TYPE,
                "at": env.occurred_at.isoformat(),
                "stage": e.stage,
                "training_fingerprint": e.training_fingerprint,
                "inference_fingerprint": e.inference_fingerprint,
                "problems": problems,
                "actor": env.actor,
                "event_id": env.event_id,
            }
        )
    out.sort(key=lambda r: (r["at"], r["event_id"]))
    return out


def model_diffs(
    views: ViewStore, read_bytes: ReadBytes, lanes: dict[str, list[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """What changed at each change of model in an environment's timeline (`keel audit diff`)."""
    read_json = lambda aid: json.loads(read_bytes(aid).splitlines()[0])  # noqa: E731
    out = []
    for env, lane in lanes.items():
        for before, after in pairwise(lane):
            if before["model_id"] == after["model_id"]:
                continue
            where = {"env": env, "at": after["since"], "event_id": after["event_id"]}
            try:
                d = Reads(views).diff(before["model_id"], after["model_id"], read_json, top=3)
            except KeelError as exc:  # e.g. a model deployed with no ModelTrained in the log
                out.append(
                    {
                        **where,
                        "a": before["model_id"],
                        "b": after["model_id"],
                        "unavailable": str(exc),
                    }
                )
                continue
            out.append({**where, **d})
    return out


def drifts(
    views: ViewStore, family: str, envs: Sequence[str], start: datetime, end: datetime
) -> tuple[list[dict[str, Any]], bool]:
    """Every DriftDetected of the period in `envs` (`keel audit skew` records them), oldest
    first: when, which model, and the drifting features with their PSI and KS p-value."""
    out: list[dict[str, Any]] = []
    more = False
    for env in envs:
        found = views.index_range(
            keys.drifts(family, env), low=start.timestamp() * 1000, high=end.timestamp() * 1000,
            limit=ROWS + 1,
        )  # fmt: skip
        more = more or len(found) > ROWS
        docs = views.get_many([keys.drift(member) for member, _ in found[:ROWS]])
        out += [d for d in docs if d and _in(d["at"], start, end)]
    out.sort(key=lambda d: (d["at"], d["event_id"]))
    return out, more


def metric_series(decided: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[Any]]]:
    """Per environment, per gated metric: (time, value, decision, threshold) of each decision
    that applied a gate, the gates' thresholds as they were then."""
    out: dict[str, dict[str, list[Any]]] = {}
    for d in decided:
        for gate in d.get("gates") or []:
            if gate.get("value") is None:
                continue
            points = out.setdefault(d["env"], {}).setdefault(gate["metric"], [])
            threshold = gate["threshold"] if gate["op"] in (">=", "<=", ">", "<") else None
            points.append([d["at"], gate["value"], d["decision"], threshold, gate["name"]])
    return out


def gather(
    views: ViewStore,
    read_bytes: ReadBytes,
    family: str,
    envs: Sequence[str],
    start: datetime,
    end: datetime,
    reconciled: Sequence[Any] = (),
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """`as_of`: the newest time the log knows (its newest event); a model still serving is
    shown as serving up to then, not to the period's end, which may be in the future."""
    if end <= start:
        raise KeelError(
            f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})",
            hint="give --from earlier than --to",
        )
    read = Reads(views)
    timelines = {env: timeline(views, family, env, start, end) for env in envs}
    lanes = {env: rows for env, (rows, _) in timelines.items()}
    decided, more_decisions = decisions(views, family, envs, start, end)
    truncated = [f"deployments in {env}" for env, (_, more) in timelines.items() if more]
    truncated += ["registry decisions"] if more_decisions else []
    ingested, contracts = datasets(read, read_bytes, family, start, end)
    drifted, more_drifts = drifts(views, family, envs, start, end)
    truncated += ["drifts"] if more_drifts else []
    eval_ids = sorted({d["eval_dataset_id"] for d in decided if d.get("eval_dataset_id")})
    return {
        "family": family,
        "envs": list(envs),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "as_of": min(as_of or end, end).isoformat(),
        "timeline": lanes,
        "interventions": [
            {"env": env, **iv}
            for env, lane in lanes.items()
            for iv in lane
            if iv["kind"] != "promotion" and _in(iv["since"], start, end)
        ],
        "decisions": decided,
        "eval_datasets": [
            {"id": i, **{k: v for k, v in (read.dataset(i) or {}).items() if k != "id"}}
            for i in eval_ids
        ],
        "datasets": ingested,
        "contracts": contracts,
        "reconciliations": reconciliations(reconciled, start, end),
        "drifts": drifted,
        "diffs": model_diffs(views, read_bytes, lanes),
        "metrics": metric_series(decided),
        "truncated": [f"{what}: only the first {ROWS} are listed" for what in truncated],
    }


def listed_events(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(event ID, what it is) of every event the document lists, in document order, once."""
    seen: dict[str, str] = {}

    def add(eid: str | None, what: str) -> None:
        if eid and eid not in seen:
            seen[eid] = what

    for env, lane in doc["timeline"].items():
        for iv in lane:
            add(iv["event_id"], f"{env}: {iv['model_id'][:12]} deployed ({iv['kind']})")
    for d in doc["decisions"]:
        add(d["event_id"], f"{d['env']}: {d['model_id'][:12]} {d['decision']}")
    for ds in doc["eval_datasets"] + doc["datasets"]:
        add(ds.get("event_id"), f"dataset {ds['id'][:12]} ingested ({ds.get('source')})")
    for r in doc["reconciliations"]:
        add(r["event_id"], f"{r['type']} ({r['stage']})")
    for dr in doc["drifts"]:
        add(dr["event_id"], f"{dr['env']}: drift of {dr['model_id'][:12]}'s features")
    return list(seen.items())
