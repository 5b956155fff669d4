"""What every route of the audit API answers with: the client over the views the app keeps
fresh, the views themselves (`store`), and their freshness, which every answer carries as its
`freshness` field and in headers (Keel-Lag: log records not yet in the views; Keel-Checked-Ms-
Ago: how old that count is; Keel-Views: which views answered), so a stale answer is never
silent."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import HTTPException, Response
from pydantic import BaseModel

from keel.audit.reads import Reads
from keel.bootstrap import Runtime
from keel.client import Client
from keel.errors import KeelError
from keel.timeparse import parse_time
from keel.views.port import ViewStore

if TYPE_CHECKING:  # the application's commands port (injected, never imported here)
    from keel.commands import Commands


def dump(found: Any) -> Any:
    """An answer as JSON-ready data: the client's typed results as the views' documents."""
    if isinstance(found, BaseModel):
        return found.model_dump(mode="json", exclude_unset=True)
    if isinstance(found, list):
        return [dump(x) for x in found]
    return found


def reply(doc: dict[str, Any]) -> Response:
    return Response(orjson.dumps(doc, default=str), media_type="application/json")


def when(at: str | None) -> datetime:
    try:
        return parse_time(at)[0] if at else datetime.now(UTC)
    except KeelError as exc:
        raise HTTPException(422, str(exc)) from None


def known(as_of: str | None) -> datetime | None:
    return when(as_of) if as_of else None


class Answers:
    def __init__(
        self,
        rt: Runtime,
        client: Client,
        store: ViewStore,
        fresh: Callable[[], dict[str, Any]],
        commands: Commands | None = None,
    ) -> None:
        self.rt, self.client, self.store, self.fresh = rt, client, store, fresh
        self.commands = commands  # what records people's commands (None: questions only)

    def answer(self, fn: Any, *args: Any, key: str | None = None, **extra: Any) -> Response:
        """A query's answer with its freshness; a KeelError (unknown family, model, prefix)
        is a 404 naming what was not found."""
        freshness = self.fresh()
        try:
            found = fn(*args)
        except KeelError as exc:
            raise HTTPException(404, str(exc)) from None
        doc = {**extra, key: dump(found)} if key else dict(dump(found))
        doc["freshness"] = freshness
        if reset := Reads(self.store).trust_reset():  # a declared restore: always said
            doc["trust_reset"] = reset
        response = reply(doc)
        response.headers["keel-lag"] = str(freshness["lag"])
        response.headers["keel-checked-ms-ago"] = str(freshness["checked_ms_ago"])
        response.headers["keel-views"] = str(freshness.get("source", ""))
        return response

    def serving(self, family: str, env: str, at: str | None, as_of: str | None) -> Response:
        # the hot path: the function the client's `serving` calls, without the typed wrapper
        return self.answer(Reads(self.store).serving, family, env, when(at), known(as_of))
