"""`keel mlflow import`: MLflow's registry as it stands (models, versions, current aliases,
tags), recorded once. Everything is read first and recorded in one append, so an MLflow that
fails half-way records nothing. Aliases become deployments of kind `import` at the import's
time, saying that the history before it is unknown (MLflow keeps none)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from keel.errors import KeelError
from keel.pipeline import Context
from keel_services.mlflow_bridge import domain, handlers
from keel_services.mlflow_bridge.sources import Sources
from keel_services.mlflow_bridge.tracking import Tracking

API = "/api/2.0/mlflow"
PAGE = 1000


@dataclass
class Snapshot:
    """What the registry holds now, as facts with their business times."""

    facts: list[tuple[domain.Fact, datetime]] = field(default_factory=list)
    aliases: list[domain.AliasSet] = field(default_factory=list)


def _get(uri: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
    url = f"{uri.rstrip('/')}{API}/{path}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            out: dict[str, Any] = json.loads(r.read())
            return out
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise KeelError(
            f"MLflow at {uri} answered {exc.code} to {path}: {detail}; nothing was recorded",
            hint="check --tracking-uri and --model (the registry's name), then run again",
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KeelError(
            f"cannot read MLflow at {uri}: {reason}; nothing was recorded",
            hint="start the MLflow server or fix --tracking-uri (e.g. http://127.0.0.1:5000), "
            "then run again",
        ) from None


def _pages(uri: str, path: str, key: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        doc = _get(
            uri, path, {**params, "max_results": PAGE, **({"page_token": token} if token else {})}
        )
        out.extend(doc.get(key) or [])
        token = doc.get("next_page_token")
        if not token:
            return out


def _time(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, UTC)


def _tags(items: Any) -> dict[str, str]:
    return {t["key"]: str(t.get("value", "")) for t in items or []}


def read_registry(uri: str, model: str | None) -> Snapshot:
    """Every registered model (or the one named), its versions and current aliases."""
    if model:
        models = [_get(uri, "registered-models/get", {"name": model})["registered_model"]]
    else:
        models = _pages(uri, "registered-models/search", "registered_models", {})
    snap = Snapshot()
    for m in models:
        name = m["name"]
        registered = domain.ModelRegistered(name, _tags(m.get("tags")), m.get("description"))
        snap.facts.append((registered, _time(m.get("creation_timestamp", 0))))
        quoted = name.replace("'", "\\'")
        versions = _pages(
            uri, "model-versions/search", "model_versions", {"filter": f"name='{quoted}'"}
        )
        for v in sorted(versions, key=lambda v: int(v["version"])):
            fact = domain.VersionCreated(
                name,
                str(v["version"]),
                v.get("source") or "",
                v.get("run_id") or None,
                _tags(v.get("tags")),
                v.get("description") or None,
            )
            snap.facts.append((fact, _time(v.get("creation_timestamp", 0))))
        for a in m.get("aliases") or []:
            snap.aliases.append(domain.AliasSet(name, a["alias"], str(a["version"])))
    return snap


def import_registry(
    ctx: Context, uri: str, model: str | None, names: domain.Names, at: datetime | None = None
) -> dict[str, Any]:
    """Record the registry as it stands; returns what was recorded."""
    snap = read_registry(uri, model)  # all of it before anything is recorded
    now = at or datetime.now(UTC)
    rec = handlers.Recorder(ctx, f"mlflow-import:{uuid.uuid4()}")
    # model files are read from the same server; an alias stated by an import is no move to judge
    sources = Sources(Tracking(uri))
    for fact, when in snap.facts:
        handlers.record(rec, fact, when, names, ctx.actor, sources, judge=False)
    skipped = 0
    for alias in snap.aliases:
        family, env = names.family(alias.name), names.env(alias.alias)
        current = ctx.read.serving_now(family, env)
        target = handlers.model_id(alias.name, alias.version)
        if current is not None and current.model_id == target and current.end is None:
            skipped += 1  # Keel already knows it serves there (an earlier import or webhook)
            continue
        note = domain.import_note(now)
        handlers.deploy(rec, family, env, alias, now, handlers.IMPORT, note, ctx.actor)
    events = rec.commit()
    return {
        "tracking_uri": uri,
        "imported_at": now.isoformat(),
        "models": sum(isinstance(f, domain.ModelRegistered) for f, _ in snap.facts),
        "versions": sum(isinstance(f, domain.VersionCreated) for f, _ in snap.facts),
        "aliases": len(snap.aliases),
        "aliases_already_known": skipped,
        "events": len(events),
        "note": domain.import_note(now),
    }
