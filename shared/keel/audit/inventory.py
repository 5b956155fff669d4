"""What exists, newest first, from the views' inventory indexes: families, models, datasets,
deployments, artifacts. Each page is one index range plus one multi-get of its documents,
whatever the history size."""

from __future__ import annotations

from typing import Any

from keel.audit import index_order, keys
from keel.errors import KeelError
from keel.views.port import ViewStore

MAX_LIMIT = 1000


def families(views: ViewStore) -> list[str]:
    return list((views.get(keys.FAMILIES) or {}).get("families", []))


def _page(views: ViewStore, index: str, offset: int, limit: int) -> list[tuple[str, float]]:
    if offset < 0 or not 1 <= limit <= MAX_LIMIT:
        raise KeelError(f"offset must be >= 0 and limit 1..{MAX_LIMIT}")
    return views.index_range(index, offset=offset, limit=limit, reverse=True)


def models(
    views: ViewStore, family: str, env: str | None = None, offset: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """Models of a family, newest first; with `env`, the deployments of that environment
    newest first (a model deployed twice is listed twice), each with its model's facts."""
    if env is not None:
        deps = deployments(views, family, env, offset, limit)
        docs = views.get_many([keys.model(d["model_id"]) for d in deps])
        return [
            {**_model_row(m or {"id": d["model_id"]}), "deployed_at": d["since"], "kind": d["kind"]}
            for d, m in zip(deps, docs, strict=True)
        ]
    ids = [m for m, _ in _page(views, keys.models(family), offset, limit)]
    return [_model_row(m) for m in views.get_many([keys.model(i) for i in ids]) if m]


def _model_row(m: dict[str, Any]) -> dict[str, Any]:
    evals = m.get("evaluations") or []
    return {
        "model_id": m["id"],
        "family": m.get("family"),
        "trained_at": m.get("trained_at"),
        "trainer": m.get("trainer"),
        "metrics": evals[-1]["metrics"] if evals else {},
        "decisions": len(m.get("decisions", [])),
    }


def datasets(
    views: ViewStore, family: str, offset: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    ids = [m for m, _ in _page(views, keys.datasets(family), offset, limit)]
    return [d for d in views.get_many([keys.dataset(i) for i in ids]) if d]


def deployments(
    views: ViewStore, family: str, env: str, offset: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    """Deployments of an environment, newest first, each with when it ended (`until`: the
    next deployment's business time; None for the one serving)."""
    index = keys.serving(family, env)
    # the deployment just newer than the page's newest gives that one's end
    above = _page(views, index, offset - 1, 1) if offset else []
    hits = _page(views, index, offset, limit)
    wanted = [index_order.deployment_key(m) for m, _ in (above[:1] + hits)]
    docs = views.get_many(wanted)
    following = docs[0] if above else None
    rows = docs[1:] if above else docs
    out = []
    for d in rows:
        if d is None:
            continue
        out.append({**d, "until": following["since"] if following else None})
        following = d
    return out


def artifacts(
    views: ViewStore, kind: str | None = None, offset: int = 0, limit: int = 50
) -> list[dict[str, Any]]:
    ids = [m for m, _ in _page(views, keys.artifacts(kind), offset, limit)]
    return [a for a in views.get_many([keys.artifact(i) for i in ids]) if a]
