"""The fold's next batch read from the log on a second thread while this one folds the current.

The log's read spends part of its time outside the GIL (sqlite3 while it steps, librdkafka while
it polls), so reading batch N+1 beside the fold and write of batch N can use the second core.
Only the read moves: decode, trees and signatures stay on the fold's thread, in log order.

Bounded: at most `depth` batches wait in the queue (plus the one the reader holds while it
waits, and the one being folded). An error on the reader is raised where the fold would have
read the batch; leaving the `with` (done, failed, StaleTracking's re-read) stops the reader and
joins it. KEEL_FOLD_PREFETCH=0 reads on the fold's thread as before (for comparison).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

PREFETCH_ENV = "KEEL_FOLD_PREFETCH"
JOIN_S = 30.0  # a reader stuck past this in the log's client is left behind as a daemon
_POLL_S = 0.05  # how often a reader blocked on a full queue looks whether it was stopped

T = TypeVar("T")
_ITEM, _END, _ERROR = range(3)


def enabled() -> bool:
    """Whether folds prefetch (Settings.fold_prefetch, $KEEL_FOLD_PREFETCH; on unless 0)."""
    from keel.settings import Settings  # where no runtime passed its settings, as foldcore's

    return Settings().fold_prefetch


@contextmanager
def batches(source: Iterator[T], on: bool = True, depth: int = 1) -> Iterator[Iterator[T]]:
    """`source`'s items, produced `depth` ahead on a reader thread (on=False: as they are)."""
    if not on:
        yield source
        return
    reader = _Reader(source, depth)
    try:
        yield reader.items()
    finally:
        reader.stop()


class _Reader:
    def __init__(self, source: Iterator[Any], depth: int) -> None:
        self._source = source
        self._queue: queue.Queue[tuple[int, Any]] = queue.Queue(maxsize=depth)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keel-fold-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._source:
                if not self._put((_ITEM, item)):
                    return
        except BaseException as exc:  # handed to the fold's thread, raised there
            self._put((_ERROR, exc))
            return
        self._put((_END, None))

    def _put(self, message: tuple[int, Any]) -> bool:
        while not self._stopped.is_set():
            try:
                self._queue.put(message, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def items(self) -> Iterator[Any]:
        while True:
            kind, value = self._queue.get()
            if kind == _END:
                return
            if kind == _ERROR:
                raise value
            yield value

    def stop(self) -> None:
        self._stopped.set()
        while True:  # what waits is dropped (a re-read starts from the views' positions)
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            logger.warning("the fold's log reader did not stop within %.0f s", JOIN_S)
            return
        close = getattr(self._source, "close", None)
        if close is not None:  # a generator's finally blocks run here, not at collection
            close()
