"""The HTTP floor for bench_audit_http: uvicorn (same settings as `keel service run`) with an
ASGI app that returns a fixed JSON body of an answer's size, doing no work. Run as
`python -m bench.asgi_floor PORT`; what Keel's answers cost above this is Keel's."""

from __future__ import annotations

import sys
from typing import Any

import orjson

BODY = orjson.dumps({"serving": {"model_id": "0" * 64, "padding": "x" * 900}, "freshness": {}})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
