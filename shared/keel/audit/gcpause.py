"""The cycle collector paused for a fold or a scan (bench_verify, bench_native_fold).

A fold allocates millions of objects and keeps many (the batch's documents, up to 200k cached;
in verify's scan each artifact's recorded digest, and each event's first position where proofs
need it), none in reference cycles. The collector's generation-2 passes walk that growing heap
again and again: 12-15 us an event of CPU in verify's scan, ~9-14 us in the projector's fold
(100k events, both cores). Paused for a bounded stretch of work and resumed after, it runs as
usual between them, so the rare cycle (an exception's traceback) is still collected, only
later; the first allocation after pays one full pass over what the work kept.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """Pause the cycle collector for the block; resume it after if it was running (nested
    pauses resume only at the outermost)."""
    running = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if running:
            gc.enable()
