"""The ingest service over HTTP: `POST /v1/families/{family}/records`.

The body is a JSON array of records, or JSON Lines (`application/x-ndjson`). It goes through the
same path as `keel ingest FILE`: the received bytes become a raw-batch artifact, every record is
validated against the family's training contract, bad ones are quarantined with their reasons.
"""

from __future__ import annotations

import re
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
from keel.readers import BOM, MAX_LINE, JsonWindow
from keel.timeparse import business_time
from keel_services.ingest.handlers import ingest_file

MAX_BODY = 64 << 20  # the default of [ingest] max_body_bytes; larger batches: `keel ingest FILE`
# No content type at all is sniffed (array or lines); a declared non-JSON one is refused (415).
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "text/plain", "")


def create_app(ctx: Context, token: str | None = None) -> FastAPI:
    app = FastAPI(title="Keel ingest", version="1", description=__doc__)
    telemetry.instrument(app, "ingest")
    app.add_middleware(
        Guard,
        token=token,
        max_body=ctx.project.ingest.max_body_bytes,
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
        with tempfile.TemporaryDirectory(prefix="keel-ingest-") as d:
            path = Path(d) / f"http-{family}.jsonl"
            _spool_as_json_lines(body, request.headers.get("content-type", ""), path)
            if not _has_text(path):
                raise HTTPException(422, "the body holds no records")
            try:
                when = business_time(at)[0]
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


WRAPPED = re.compile(rb'\s*\{\s*"records"\s*:\s*\[')


def _spool_as_json_lines(body: bytes, content_type: str, path: Path) -> None:
    """Write the body to `path` as JSON Lines, never decoding it whole (a 64 MiB `[{},{},...]`
    is 21M objects): a JSON array, or {"records": [...]}, is decoded one element at a time
    (keel.readers.JsonWindow) and written one line per element; anything else is taken as JSON
    Lines, so a malformed line is quarantined at its position rather than failing the whole
    request. A UTF-8 byte order mark (some Windows tools write one) is no part of the JSON."""
    body = body.removeprefix(BOM)
    head = body[:4096].lstrip()
    wrapped = WRAPPED.match(body[:4096])
    if "ndjson" in content_type or "jsonl" in content_type or head[:1] not in (b"[", b"{"):
        path.write_bytes(body)
        return
    if head.startswith(b"{") and not wrapped:
        if len(body) <= MAX_LINE and isinstance(_loads_or_none(body), dict):
            raise HTTPException(
                422, 'send a JSON array of records, {"records": [...]}, or JSON Lines'
            )
        path.write_bytes(body)  # several objects, one per line: JSON Lines
        return
    raw = path.with_suffix(".body")
    raw.write_bytes(memoryview(body)[wrapped.end() - 1 if wrapped else 0 :])
    try:
        with open(raw, encoding="utf-8") as src, open(path, "wb") as out:
            window = JsonWindow(src.read, "the request body")
            window.expect_array()
            for element in window.elements(then="}" if wrapped else ""):
                out.write(orjson.dumps(element) + b"\n")
    except KeelError:
        path.write_bytes(body)  # not a JSON array after all: its lines are judged one by one
    finally:
        raw.unlink()


def _loads_or_none(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _has_text(path: Path) -> bool:
    with open(path, "rb") as f:
        return any(chunk.strip() for chunk in iter(lambda: f.read(1 << 20), b""))
