"""The audit questions answered from the persisted views (any ViewStore). Lookups only: each
answer is a handful of key reads and at most two index lookups, whatever the history size."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from keel.audit import index_order, keys
from keel.audit.readmodel import WITHDRAWN
from keel.errors import KeelError
from keel.timeparse import CLOCK_SKEW_MS
from keel.views.port import ViewStore

ReadJson = Callable[[str], Any]


def _ms(at: datetime) -> float:
    return float(int(at.timestamp() * 1000))


def serving_at(
    views: ViewStore, family: str, env: str, at: datetime, as_of: datetime | None = None
) -> dict[str, Any]:
    """What served in `env` at business time `at`, as the system knew at `as_of` (default: as
    it knows now): among deployments recorded by `as_of`, the latest with a business time at or
    before `at`. Index walk over business time, from min(at, as_of + skew) down (nothing
    recorded by `as_of` has a business time later than that: later ones are refused), skipping
    deployments recorded after `as_of`; the end of the interval likewise, up to as_of + skew.
    Cost: one round trip, plus, when candidates were recorded after `as_of` (written into the
    past after R, or within the clock-skew window), a walk in pages of 16, 64, 256, 1024."""
    index = keys.serving(family, env)
    base = {"family": family, "env": env, "at": at.isoformat()}
    if as_of is not None:
        base["as_of"] = as_of.isoformat()
    bound = _ms(at) if as_of is None else min(_ms(at), _ms(as_of) + CLOCK_SKEW_MS)
    # what follows it as known at R: recorded by R, so a business time by R + skew at the latest
    ceiling = float("inf") if as_of is None else _ms(as_of) + CLOCK_SKEW_MS
    cutoff = float("inf") if as_of is None else _ms(as_of)

    def known(member: str) -> bool:
        return as_of is None or _member_recorded(views, member) <= cutoff

    # The usual case in one round trip: the deployment current at the bound and the next one,
    # both known at R, with their documents. Otherwise the walks below skip what was recorded
    # after R, and the documents of what they find cost one more.
    below, above, around = views.index_around_docs(index, bound, keys.DEPLOYMENT_PREFIX)
    hit = below if below and known(below[0]) else None
    if hit is None and below is not None:
        hit = _walk(views, index, bound, known, reverse=True)
    if hit is None:
        when = f" as known at {as_of.isoformat()}" if as_of is not None else ""
        return {
            **base,
            "serving": None,
            "message": f"nothing was serving in {env} at {at.isoformat()}{when}",
        }
    if above is None or above[1] > ceiling:
        nxt = None
    elif hit == below and known(above[0]):
        nxt = above
    else:
        nxt = _walk(views, index, hit[1], known, reverse=False, after=hit, high=ceiling)
    if hit == below and nxt in (above, None):
        doc, following = around[0], around[1] if nxt else None
    else:
        doc, following = views.get_many([_doc_key(m) for m in (hit[0], nxt[0] if nxt else "")])
    until = following["since"] if following else None
    if doc and doc.get("kind") == WITHDRAWN:
        return {
            **base,
            "serving": None,
            "message": f"nothing was serving in {env} at {at.isoformat()}: withdrawn at "
            f"{doc['since']} ({doc.get('reason') or 'no reason given'})",
        }
    return {**base, "serving": {**(doc or {}), "until": until}}


def deployments_during(
    views: ViewStore,
    family: str,
    env: str,
    start: datetime,
    end: datetime,
    as_of: datetime | None = None,
    limit: int = 300,
) -> tuple[list[dict[str, Any]], bool]:
    """The deployments of `env` that served during [start, end) as known at `as_of`, oldest
    first, each with `until` (the next one's business time; None while it serves): the one
    current at `start` and up to `limit` that began inside. Three index reads and one
    multi-get, whatever the history; True when more began inside than `limit`."""
    index = keys.serving(family, env)
    cutoff = float("inf") if as_of is None else _ms(as_of)

    def known(member: str) -> bool:
        recorded = index_order.recorded_ms(member)
        return recorded is None or recorded <= cutoff

    before = [
        e for e in views.index_range(index, high=_ms(start), limit=16, reverse=True) if known(e[0])
    ][:1]
    inside = views.index_range(index, low=_ms(start), high=_ms(end), limit=limit + 1)
    after = [e for e in views.index_range(index, low=_ms(end), limit=16) if e[1] >= _ms(end)]
    entries = before + [e for e in inside[:limit] if known(e[0]) and e not in before]
    entries += [e for e in after if known(e[0]) and e not in entries][:1]
    # in the index's order (business time, then recorded order), never by event ID: the three
    # reads overlap where deployments share the period's start or end time
    entries.sort(key=index_order.entry_order)
    docs = [d for d in views.get_many([_doc_key(m) for m, _ in entries]) if d]
    out = []
    for doc, nxt in zip(docs, [*docs[1:], None][: len(docs)], strict=True):
        if datetime.fromisoformat(doc["since"]) >= end:
            break  # the one after the period: it only ends the last one
        if doc.get("kind") != WITHDRAWN:  # a withdrawal only ends the one before
            out.append({**doc, "until": nxt["since"] if nxt else None})
    return out, len(inside) > limit


def decisions_during(
    views: ViewStore,
    family: str,
    start: datetime,
    end: datetime,
    as_of: datetime | None = None,
    limit: int = 500,
) -> tuple[list[dict[str, Any]], bool]:
    """Registry decisions with a business time in [start, end) (as known at `as_of`), oldest
    first, at most `limit`; True when there were more."""
    hits = views.index_range(keys.registry(family), low=_ms(start), high=_ms(end), limit=limit + 1)
    docs = [d for d in views.get_many([index_order.decision_key(m) for m, _ in hits[:limit]]) if d]
    docs = [d for d in docs if datetime.fromisoformat(d["at"]) < end]
    if as_of is not None:
        docs = [d for d in docs if _recorded(d, "at") <= _ms(as_of)]
    return docs, len(hits) > limit


def _doc_key(member: str) -> str:
    return index_order.deployment_key(member) if member else "-"


def _member_recorded(views: ViewStore, member: str) -> float:
    """A serving index member carries its recorded time (keel.audit.index_order); a bare
    event ID does not, and its document says."""
    recorded = index_order.recorded_ms(member)
    if recorded is not None:
        return float(recorded)
    doc = views.get(_doc_key(member)) or {}
    return _recorded(doc) if doc else float("inf")


def _recorded(doc: dict[str, Any], business: str = "since") -> float:
    """When the log recorded what `doc` describes; views folded before recorded time was
    kept fall back to its business time (field `business`)."""
    return float(doc.get("recorded_ms") or _ms(datetime.fromisoformat(doc[business])))


def _walk(
    views: ViewStore,
    index: str,
    bound: float,
    known: Callable[[str], bool],
    reverse: bool,
    after: tuple[str, float] | None = None,
    page: int = 16,
    high: float = float("inf"),
) -> tuple[str, float] | None:
    """The first index entry from `bound` (down when `reverse`, else up, strictly past `after`)
    whose member `known` accepts; in growing pages, so a long run of too-recent deployments (a
    bulk import, compressed time) costs a few round trips of index entries, no documents."""
    offset, size = 0, 1  # the first candidate usually answers: fetch one, then pages
    while True:
        if reverse:
            hits = views.index_range(index, high=bound, offset=offset, limit=size, reverse=True)
        else:
            hits = views.index_range(index, low=bound, high=high, offset=offset, limit=size)
        for member, score in hits:
            if after is not None and (score, member) <= (after[1], after[0]):
                continue
            if known(member):
                return member, score
        if len(hits) < size:
            return None
        offset, size = offset + size, min(max(page, size * 4), 1024)


def why(
    views: ViewStore, family: str, env: str, at: datetime, as_of: datetime | None = None
) -> dict[str, Any]:
    """deployment -> promotion -> eval report -> model -> feature set -> datasets (5 steps)."""
    s = serving_at(views, family, env, at, as_of)
    dep = s["serving"]
    if dep is None:
        return {**s, "steps": []}
    steps: list[dict[str, Any]] = [{"step": "deployment", **dep}]
    # the decision behind it: its promotion, or for an override the failed gate it overrode
    ref = dep.get("promotion_event_id") or (
        dep.get("causation_id") if dep.get("kind") == "override" else None
    )
    promo = views.get(keys.decision(ref)) if ref else None
    if promo:
        steps.append(
            {
                "step": "overridden decision" if dep.get("kind") == "override" else "promotion",
                **{k: promo.get(k) for k in _DECISION_FIELDS},
                "backdated": promo.get("backdated", False),
            }
        )
    model = views.get(keys.model(dep["model_id"])) or {}
    ev = next(
        (
            e
            for e in model.get("evaluations", [])
            if e["eval_report_id"] == dep.get("eval_report_id")
        ),
        None,
    )
    if ev:
        steps.append({"step": "eval_report", **ev})
    steps.append(
        {
            "step": "model",
            "id": dep["model_id"],
            "trainer": model.get("trainer"),
            "params": model.get("params"),
            "code_version": model.get("code_version"),
            "feature_set_ids": model.get("feature_set_ids", []),
        }
    )
    fsets = [views.get(keys.featureset(f)) or {"id": f} for f in model.get("feature_set_ids", [])]
    datasets = sorted({d for f in fsets for d in f.get("dataset_ids", [])})
    steps.append({"step": "feature_sets", "feature_sets": fsets, "datasets": datasets})
    drift = latest_drift(views, family, env, at, dep["model_id"])
    if drift is not None:
        steps.append({"step": "drift", **drift})
    return {**s, "steps": steps}


def latest_drift(
    views: ViewStore, family: str, env: str, at: datetime, model_id: str
) -> dict[str, Any] | None:
    """The newest DriftDetected for the model serving family/env, recorded by T."""
    for member, _ in views.index_range(
        keys.drifts(family, env), high=_ms(at), limit=20, reverse=True
    ):
        doc = views.get(keys.drift(member))
        if doc is not None and doc["model_id"] == model_id:
            return doc
    return None


_DECISION_FIELDS = (
    "decision",
    "reason",
    "gates",
    "at",
    "recorded_at",
    "actor",
    "event_id",
    "trigger",
    "note",
    "policy_version",
    "approved_by",
)


def why_promoted(
    views: ViewStore,
    model_id: str,
    env: str | None = None,
    over: str | None = None,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """Why MODEL was promoted. With `env`: that environment's latest promotion, its gates, the
    metrics beside the model it replaced (or `over`), its rejections and reviews there. Without:
    every environment it was promoted to, in the order it first reached them
    ({"model_id", "environments": [one such answer each], "not_promoted": [{"env", "reason",
    "rejections"}]}),
    since a model promoted to staging and prod has a different decision, incumbent and
    reviewers in each. Never promoted (there, or anywhere): a KeelError saying so."""
    model = views.get(keys.model(model_id))
    if model is not None and as_of is not None:
        _require_known(model, model_id, as_of)
    if model is None:
        raise KeelError(
            f"no model {model_id[:12]} in the audit views",
            hint="check the ID; run `keel audit project`",
        )
    decisions = [
        d
        for d in views.get_many([keys.decision(e) for e in model.get("decisions", [])])
        if d and (as_of is None or _recorded(d, "at") <= _ms(as_of))
    ]
    if env is not None:
        found = _promotion_in(views, decisions, env, over)
        if found is None:
            raise _never_promoted(decisions, model_id, env)
        return found
    answers, refused = [], []
    # the order it first reached them: the model's decisions are kept in the index's order
    # (business time, then recorded order: keel.audit.index_order), so staging's decision
    # comes before prod's at one business time (staging's deployment is recorded before
    # prod's gate reads it)
    for e in dict.fromkeys(d["env"] for d in decisions):
        found = _promotion_in(views, decisions, e, over)
        if found is not None:
            answers.append(found)
        else:
            refused.append(
                {
                    "env": e,
                    "reason": str(_never_promoted(decisions, model_id, e)),
                    "rejections": [
                        d for d in decisions if d["env"] == e and d["decision"] == "rejected"
                    ],
                }
            )
    if not answers:
        raise _never_promoted(decisions, model_id, None)
    return {"model_id": model_id, "environments": answers, "not_promoted": refused}


def _promotion_in(
    views: ViewStore, decisions: list[dict[str, Any]], env: str, over: str | None
) -> dict[str, Any] | None:
    """The answer for one environment, or None when the model was never promoted there."""
    here = [d for d in decisions if d["env"] == env]
    promos = [d for d in here if d["decision"] == "promoted"]
    if not promos:
        return None
    promo = promos[-1]
    other = over or promo["incumbent_model_id"]
    comparison = []
    if other:
        theirs_doc = views.get(keys.model(other)) or {}
        evals = theirs_doc.get("evaluations", [])
        theirs = evals[-1]["metrics"] if evals else {}
        for m in sorted(set(promo["metrics"]) | set(theirs)):
            a, b = promo["metrics"].get(m), theirs.get(m)
            comparison.append(
                {
                    "metric": m,
                    "model": a,
                    "other": b,
                    "delta": None if a is None or b is None else round(a - b, 6),
                }
            )
    return {
        "env": env,
        "promotion": promo,
        "over": other,
        "comparison": comparison,
        "rejections": [d for d in here if d["decision"] == "rejected"],
        # the pending promotion it concluded and each person's review of it
        "reviews": [d for d in here if d["decision"] in ("pending", "approved", "declined")],
    }


def _never_promoted(decisions: list[dict[str, Any]], model_id: str, env: str | None) -> KeelError:
    """Why there is no promotion to show: a failed gate a person overrode, or none at all."""
    overridden = [
        d
        for d in decisions
        if d["decision"] == "rejected"
        and d.get("trigger") == "deploy"
        and (env is None or d["env"] == env)
    ]
    if overridden:  # a person asked for it, its gate failed: deployed only by override
        d = overridden[-1]
        return KeelError(
            f"model {model_id[:12]} was never promoted to {d['env']}: its gate failed when "
            f"{d['actor']} asked to deploy it at {d['at'][:19]} ({d['reason']})",
            hint=f"if it served, it was by override: `keel deployments list --env {d['env']}`"
            " shows the override and its reason",
        )
    return KeelError(
        f"model {model_id[:12]} was never promoted{' to ' + env if env else ''}",
        hint="`keel audit tail --topic registry` lists every decision",
    )


def registry_history(
    views: ViewStore,
    family: str,
    offset: int = 0,
    limit: int = 50,
    as_of: datetime | None = None,
) -> list[dict[str, Any]]:
    """Decisions in business-time order; as of a time, only those recorded by then (paged
    over the decisions known then)."""
    if as_of is None:
        members = views.index_range(keys.registry(family), offset=offset, limit=limit)
        return [d for d in views.get_many([index_order.decision_key(m) for m, _ in members]) if d]
    out: list[dict[str, Any]] = []
    skip, pos, high = offset, 0, _ms(as_of) + CLOCK_SKEW_MS
    while len(out) < limit:
        members = views.index_range(keys.registry(family), high=high, offset=pos, limit=200)
        for d in views.get_many([index_order.decision_key(m) for m, _ in members]):
            if d and _recorded(d, "at") <= _ms(as_of):
                if skip:
                    skip -= 1
                elif len(out) < limit:
                    out.append(d)
        if len(members) < 200:
            break
        pos += 200
    return out


def _require_known(model: dict[str, Any], model_id: str, as_of: datetime) -> None:
    if _recorded(model, "trained_at") > _ms(as_of):
        raise KeelError(
            f"model {model_id[:12]} was not yet recorded at {as_of.isoformat()}",
            hint="ask as of a later time, or without --as-of",
        )


def diff(
    views: ViewStore,
    a: str,
    b: str,
    read_json: ReadJson,
    top: int = 5,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """What differs between two models: training datasets, feature sets and the features whose
    distribution moved most, code versions, trainer params, contracts, eval metrics. As of a
    time: both models must have been recorded by then, and metrics are the evaluations known
    then (what a model was trained on never changes once recorded)."""
    from keel.audit.queries import feature_shift

    ma, mb = (views.get(keys.model(m)) for m in (a, b))
    for mid, doc in ((a, ma), (b, mb)):
        if doc is None or "trainer" not in doc:
            raise KeelError(f"no trained model {mid[:12]} in the audit views", hint="check the ID")
        if as_of is not None:
            _require_known(doc, mid, as_of)
    assert ma is not None and mb is not None
    if as_of is not None:
        ma, mb = (
            {
                **m,
                "evaluations": [
                    e for e in m.get("evaluations", []) if _recorded(e, "at") <= _ms(as_of)
                ],
            }
            for m in (ma, mb)
        )
    fa = [views.get(keys.featureset(f)) or {} for f in ma["feature_set_ids"]]
    fb = [views.get(keys.featureset(f)) or {} for f in mb["feature_set_ids"]]
    da = {d for f in fa for d in f.get("dataset_ids", [])}
    db = {d for f in fb for d in f.get("dataset_ids", [])}
    dsa = [views.get(keys.dataset(d)) or {} for d in sorted(da)]
    dsb = [views.get(keys.dataset(d)) or {} for d in sorted(db)]
    ea = ma["evaluations"][-1]["metrics"] if ma.get("evaluations") else {}
    eb = mb["evaluations"][-1]["metrics"] if mb.get("evaluations") else {}
    out: dict[str, Any] = {
        "a": a,
        "b": b,
        "datasets": {"only_a": sorted(da - db), "only_b": sorted(db - da), "shared": len(da & db)},
        "feature_sets": {"a": ma["feature_set_ids"], "b": mb["feature_set_ids"]},
        "code_version": {
            "a": ma["code_version"],
            "b": mb["code_version"],
            "same": ma["code_version"] == mb["code_version"],
        },
        "feature_code": {
            "a": sorted({f.get("code_version") for f in fa}),
            "b": sorted({f.get("code_version") for f in fb}),
        },
        "trainer": {"a": ma["trainer"], "b": mb["trainer"]},
        "trained": {
            side: {k: m.get(k) for k in ("trained_at", "recorded_at", "backdated")}
            for side, m in (("a", ma), ("b", mb))
        },
        "params": {
            k: {"a": ma["params"].get(k), "b": mb["params"].get(k)}
            for k in sorted(set(ma["params"]) | set(mb["params"]))
            if ma["params"].get(k) != mb["params"].get(k)
        },
        "contracts": {
            "a": sorted({d.get("contract") for d in dsa}),
            "b": sorted({d.get("contract") for d in dsb}),
        },
        "metrics": [
            {
                "metric": m,
                "a": ea.get(m),
                "b": eb.get(m),
                "delta": None if m not in ea or m not in eb else round(eb[m] - ea[m], 6),
            }
            for m in sorted(set(ea) | set(eb))
        ],
    }
    if fa and fb and fa[0].get("stats_id") and fb[0].get("stats_id"):
        sa, sb = read_json(fa[0]["stats_id"]), read_json(fb[0]["stats_id"])
        out["feature_shift"] = feature_shift(sa, sb)[:top]
        out["label_shift"] = {"a": sa.get("label"), "b": sb.get("label")}
    return out


def label_summary(stats: dict[str, Any]) -> str:
    """One line for a label's training stats: per-class shares, or the mean of a value."""
    if "shares" in stats:
        return ", ".join(f"{k}: {v:.1%}" for k, v in stats["shares"].items())
    return f"mean {stats.get('mean', 0):.4f}"
