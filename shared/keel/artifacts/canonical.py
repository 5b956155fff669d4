"""The canonical bytes of JSON-shaped artifacts (datasets, feature sets, reports, manifests).

Every service that stores JSON Lines shapes them here, so equal data gives equal bytes (and
equal artifact IDs) whichever service wrote them; each service's code version covers this
module because it covers the whole `keel` library.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson


def canonical_lines(rows: Iterable[Any]) -> bytes:
    """JSON Lines with sorted keys and shortest round-trip floats: equal data, equal bytes.
    orjson: ~10x the stdlib encoder, which dominated ingest (see bench/bench_ingest.py)."""
    dumps, opt = orjson.dumps, orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
    return b"".join(dumps(r, option=opt, default=str) + b"\n" for r in rows)
