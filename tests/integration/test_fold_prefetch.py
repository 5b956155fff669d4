"""The fold's prefetching reader (keel.audit.prefetch): the same views with it as without, and a
read that fails on the reader thread fails `run()` as the same error, leaving no thread behind."""

from __future__ import annotations

import sqlite3
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest

from bench.bench_projector import signed_sqlite_log
from keel.audit.projector import Progress, Projector
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.signing import Signer, Trust
from keel.views.sqlite import SqliteViewStore

pytestmark = pytest.mark.integration

EVENTS = 12_000  # three of the SQLite log's read pages (5000 rows)
BATCH = 100


def _trust(signer: Signer) -> Trust:
    return Trust(signer.trust.keys.values(), signer.trust.roles)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, codec: Codec) -> tuple[Path, Signer]:
    d = tmp_path_factory.mktemp("prefetch")
    return d, signed_sqlite_log(d, codec, EVENTS, "pipeline")


def test_prefetch_on_and_off_fold_equal_views(
    signed: tuple[Path, Signer], codec: Codec, tmp_path: Path
) -> None:
    d, signer = signed
    snaps: dict[bool, dict[str, Any]] = {}
    for on in (False, True):
        log = SqliteEventLog(d / "log.db")
        views = SqliteViewStore(tmp_path / f"views-{on}.db")
        p = Projector(log, views, codec, trust=_trust(signer), batch_size=BATCH, prefetch_reads=on)
        progress = p.run(checkpoint=False)
        assert (progress.applied, progress.rejected, progress.undecodable) == (EVENTS, 0, 0)
        snaps[on] = views.snapshot()
        log.close()
    assert len(snaps[True]["docs"]) > EVENTS // 4
    assert snaps[True] == snaps[False]


def test_a_read_failing_on_the_reader_fails_run_alike_and_stops_the_reader(
    signed: tuple[Path, Signer], codec: Codec, tmp_path: Path
) -> None:
    """The log is closed after the first batch is written: the read of its second page fails
    (sqlite3: a closed database), on the reader thread with prefetch, on the fold's without.
    Both runs raise that error after folding the first page's batches, and no reader remains."""
    d, signer = signed
    before = set(threading.enumerate())
    outcomes: dict[bool, tuple[type, str, dict[Any, int]]] = {}
    for on in (False, True):
        log = SqliteEventLog(d / "log.db")
        views = SqliteViewStore(tmp_path / f"views-{on}.db")
        p = Projector(log, views, codec, trust=_trust(signer), batch_size=BATCH, prefetch_reads=on)

        def close_after_first(progress: Progress, log: SqliteEventLog = log) -> None:
            if progress.applied == BATCH:
                log.close()

        with pytest.raises(sqlite3.ProgrammingError) as raised:
            p.run(on_batch=close_after_first, checkpoint=False)
        # raised where it happened: on the reader thread (prefetch.py's _run) only with prefetch
        frames = {f.name for f in traceback.extract_tb(raised.tb)}
        assert ("_run" in frames) == on, frames
        outcomes[on] = (type(raised.value), str(raised.value), views.tracking("audit"))
        assert set(threading.enumerate()) == before, threading.enumerate()
    assert outcomes[True] == outcomes[False]  # the same error, after the same batches
    assert "closed database" in outcomes[True][1]
    assert outcomes[True][2], "the first page's batches were folded before the error"
