"""The console's pages over the views: what serves now, timelines, why, models, lineage, diffs,
events and search. Read-only: the console has no action of its own."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from keel.audit import keys
from keel.audit.reads import Reads
from keel.errors import KeelError
from keel.views.port import ViewStore
from keel_services.audit.console import pages
from keel_services.audit.console.render import BASE, Renderer, when

MAX_DEPTH = 6


def router(r: Renderer, store: ViewStore) -> APIRouter:
    api = APIRouter()
    client = r.client

    @api.get(BASE + "")
    def home() -> HTMLResponse:
        overview = []
        for f in client.families():
            serving = {}
            for e in r.envs_of(f):
                serving[e] = Reads(store).serving(f, e, datetime.now(UTC))["serving"]
            overview.append(
                {
                    "family": f,
                    "serving": serving,
                    "models": len(client.models(f, limit=50)),
                    "datasets": len(client.datasets(f, 0, 50)),
                }
            )
        return r.page("home.html.j2", overview=overview)

    @api.get(BASE + "timeline/{family}")
    def timeline(
        family: str,
        start: str | None = Query(None, alias="from"),
        end: str | None = Query(None, alias="to"),
        at: str | None = None,
        as_of: str | None = None,
    ) -> HTMLResponse:
        try:
            if family not in client.families():
                return r.fail(
                    f"no family {family}", 404, f"families: {', '.join(client.families())}"
                )
            envs = r.envs_of(family)
            lo, hi = pages.default_window(store, family, envs)
            lo, hi = when(start) or lo, when(end) or hi
            if hi <= lo:
                return r.fail("the window ends before it starts", hint="give from earlier than to")
            data = pages.timeline(store, family, envs, lo, hi, when(at), when(as_of))
        except KeelError as exc:
            return r.refused(exc)
        return r.page(
            "timeline.html.j2",
            t=data,
            g=pages.svg_timeline(data),
            bars_cap=pages.BARS,
            marks_cap=pages.MARKS,
        )

    @api.get(BASE + "why/{family}/{env_name}")
    def why(family: str, env_name: str, at: str | None = None, as_of: str | None = None) -> Any:
        try:
            t = when(at) or datetime.now(UTC)
            data = pages.why(store, r.rt.artifacts.read_bytes, family, env_name, t, when(as_of))
        except KeelError as exc:
            return r.refused(exc)
        return r.page("why.html.j2", w=data)

    @api.get(BASE + "model/{model}")
    def model(model: str) -> Any:
        try:
            mid = client.resolve(model)
        except KeelError as exc:
            return r.refused(exc, 404)
        return r.page("model.html.j2", m=pages.model_page(store, mid))

    @api.get(BASE + "lineage/{artifact}")
    def lineage(artifact: str, depth: int = 2) -> Any:
        depth = max(1, min(MAX_DEPTH, depth))
        try:
            aid = client.resolve(artifact)
            root = SimpleNamespace(id=aid, kind=r.rt.artifacts.info(aid).kind, depth=0, via=None)
            nodes = [root, *(n for n in client.lineage(aid, "both", depth) if n.id != aid)]
        except KeelError as exc:
            return r.refused(exc, 404)
        return r.page("lineage.html.j2", g=pages.lineage_graph(nodes, aid), depth=depth)

    @api.get(BASE + "diff")
    def diff(a: str | None = None, b: str | None = None) -> Any:
        if not a or not b:
            return r.page("diff.html.j2", a=a, b=b, d=None, error=None)
        try:
            found = client.diff(a, b, top=8).model_dump(mode="json")
        except KeelError as exc:
            return r.page("diff.html.j2", a=a, b=b, d=None, error=str(exc), status=404)
        return r.page("diff.html.j2", a=a, b=b, d=found, error=None)

    @api.get(BASE + "event/{event_id}")
    def event(event_id: str) -> Any:
        doc = store.get(keys.event(event_id)) or store.get(keys.deployment(event_id))
        doc = doc or store.get(keys.decision(event_id))
        if doc is None:
            return r.fail(
                f"no event {event_id} in the views",
                404,
                "check the ID; the console keeps deployments, decisions and pipeline events",
            )
        kind = doc.get("type") or doc.get("decision") or doc.get("kind") or "event"
        body = json.dumps(doc, indent=2, sort_keys=True, default=str)
        signed_by = doc.get("signed_by")  # adopted unsigned history says so (decision 0022)
        return r.page("event.html.j2", kind=kind, event_id=event_id, body=body, signed_by=signed_by)

    @api.get(BASE + "search")
    def search(q: str = "") -> Any:
        families = client.families()
        hits = pages.search(store, client.resolve, q, families, {f: r.envs_of(f) for f in families})
        return r.page("search.html.j2", q=q, hits=hits)

    return api
