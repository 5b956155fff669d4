"""The ingest service over HTTP: `POST /v1/families/{family}/records`.

The body is a JSON array of records, or JSON Lines (`application/x-ndjson`). It goes through the
same path as `keel ingest FILE`: the received bytes become a raw-batch artifact, every record is
validated against the family's training contract, bad ones are quarantined with their reasons.
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Request

from keel import telemetry
from keel.errors import KeelError
from keel.http_guard import Guard
from keel.pipeline import Context
from keel.readers import BOM
from keel.timeparse import business_time
from services.ingest.handlers import ingest_file

MAX_BODY = 64 << 20  # one request at most 64 MiB; larger batches go through `keel ingest FILE`
# No content type at all is sniffed (array or lines); a declared non-JSON one is refused (415).
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "text/plain", "")


def create_app(ctx: Context, token: str | None = None) -> FastAPI:
    app = FastAPI(title="Keel ingest", version="1", description=__doc__)
    telemetry.instrument(app, "ingest")
    app.add_middleware(
        Guard,
        token=token,
        max_body=MAX_BODY,
        media_types=JSON_TYPES,
        hint_413="send larger batches with `keel ingest FILE`",
    )
    lock = threading.Lock()  # one ingest at a time: the bus and its state are not thread-safe

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/families/{family}/records")
    async def ingest(
        family: str, request: Request, at: str | None = None, period: str | None = None
    ) -> dict[str, Any]:
        body = await request.body()  # the guard has checked the token and the size
        if not body.strip():
            raise HTTPException(422, "empty body: send a JSON array of records or JSON Lines")
        lines = _as_json_lines(body, request.headers.get("content-type", ""))
        if not lines.strip():
            raise HTTPException(422, "the body holds no records")
        with tempfile.TemporaryDirectory(prefix="keel-ingest-") as d:
            path = Path(d) / f"http-{family}.jsonl"
            try:
                when = business_time(at)[0]
                path.write_bytes(lines)
                with lock:
                    ctx.project.family(family)
                    result = ingest_file(ctx, family, path, when, period)
            except KeelError as exc:
                status = 404 if "unknown family" in str(exc) else 422
                text = f"{exc} ({exc.hint})" if exc.hint else str(exc)
                # the spooled file is this server's business: name the body, never the path
                raise HTTPException(status, text.replace(str(path), "the request body")) from None
        return result.__dict__

    return app


def _as_json_lines(body: bytes, content_type: str) -> bytes:
    """A JSON array becomes one line per element; anything else is taken as JSON Lines, so a
    malformed line is quarantined at its position rather than failing the whole request. A
    UTF-8 byte order mark (some Windows tools write one) is no part of the JSON: dropped."""
    body = body.removeprefix(BOM)
    if "ndjson" in content_type or "jsonl" in content_type:
        return body
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body
    if isinstance(doc, dict) and isinstance(doc.get("records"), list):
        doc = doc["records"]
    if not isinstance(doc, list):
        raise HTTPException(422, 'send a JSON array of records, {"records": [...]}, or JSON Lines')
    return b"".join(orjson.dumps(r) + b"\n" for r in doc)
