"""A faust-streaming agent doing the projector's work, for bench_faust.py (run as a process).

The agent takes batches from the same topics, decodes them with Keel's codec, skips events
already applied (the same Redis set), folds them with the same pure `evolve`, and writes the
batch to the same RedisViewStore in one MULTI/EXEC. No chain: the chain-less plain loop is its
counterpart. Writes {"events", "seconds"} (first batch to last) as JSON to RESULT_FILE (faust
redirects stdout to its logger).

    python -m bench.faust_worker BOOTSTRAP PREFIX N REDIS_URL NAMESPACE MODE RESULT_FILE DATADIR
    MODE: decode (consume + decode only) | fold (decode + fold + Redis)
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

import faust

from keel.audit.projection import evolve, keys_for
from keel.codec import Codec
from keel.events import decode_event
from keel.schemas.registry import load_registry
from keel.topics import EVENT_TOPICS
from keel.views.port import Put, SetAdd, Update
from keel.views.redis import RedisViewStore

bootstrap, prefix, n_s, redis_url, namespace, mode, result_file, datadir = sys.argv[1:9]
N = int(n_s)
logging.basicConfig(level=logging.ERROR)
app = faust.App(
    f"bench-faust-{os.getpid()}",
    broker=f"kafka://{bootstrap}",
    value_serializer="raw",
    key_serializer="raw",
    store="memory://",
    web_enabled=False,
    datadir=datadir,
    topic_disable_leader=True,
    topic_allow_declare=False,
    consumer_auto_offset_reset="earliest",
    stream_buffer_maxsize=20000,
)
topic = app.topic(*(prefix + t for t in EVENT_TOPICS), value_serializer="raw")
codec = Codec(load_registry())
views = RedisViewStore(redis_url, namespace=namespace)
state: dict[str, Any] = {"n": 0, "t0": None}
docs: dict[str, Any] = {}


@app.agent(topic)
async def project(stream: Any) -> None:
    async for batch in stream.take(2000, within=1.0):
        if state["t0"] is None:
            state["t0"] = time.perf_counter()
        events = [decode_event(codec, v) for v in batch]
        if mode == "fold":
            ids = [e.envelope.event_id for e in events]
            hits = views.contains("faust:applied", ids)
            already = {i for i, h in zip(ids, hits, strict=True) if h}
            missing = sorted({k for e in events for k in keys_for(e)} - docs.keys())
            docs.update(zip(missing, views.get_many(missing), strict=True))
            index: list[Update] = []
            changed: set[str] = set()
            for e in events:
                if e.envelope.event_id in already:
                    continue
                change = evolve(docs, e)
                docs.update(change.docs)
                changed.update(change.docs)
                index.extend(change.index)
            views.apply(
                [
                    *index,
                    *(Put(k, docs[k] or {}) for k in sorted(changed)),
                    SetAdd("faust:applied", tuple(ids)),
                ]
            )
        state["n"] += len(events)
        if state["n"] >= N:
            secs = time.perf_counter() - state["t0"]
            with open(result_file, "w") as f:
                json.dump({"events": state["n"], "seconds": secs}, f)
            os._exit(0)


if __name__ == "__main__":
    sys.argv = [
        sys.argv[0],
        "worker",
        "--loglevel",
        os.environ.get("FAUST_LOG", "error"),
        "--without-web",
    ]
    app.main()
