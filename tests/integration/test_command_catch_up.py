"""A command's catch-up (`Projector.run`: `keel audit project`, the pipeline's and verify's
catch-up) folds a backlog in keel.audit.batching.CATCH_UP-sized batches while more than one
normal batch waits, and the normal size near the end; a caught-up home's new event is one small
batch (decision 0040, commands). The views come out equal to those of 5000 a batch, with the
read-ahead (keel.audit.prefetch) on and off. Before, commands folded 5000 a batch throughout.
Sizes are observed through `run`'s per-batch callback; no time is asserted."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from bench.bench_projector import signed_sqlite_log
from keel.audit.projector import Progress, Projector
from keel.bootstrap import sign_all
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.signing import Signer, Trust
from keel.views.sqlite import SqliteViewStore
from tests.faults.test_projector_kill import events

pytestmark = pytest.mark.integration

EVENTS = 45_000  # two large batches and what is left
NORMAL = 5000  # the projector's batch_size
CATCH_UP = 20_000  # keel.audit.batching.CATCH_UP (spelled here: the test runs on older code too)


def _trust(signer: Signer) -> Trust:
    return Trust(signer.trust.keys.values(), signer.trust.roles)


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, codec: Codec) -> tuple[Path, Signer]:
    d = tmp_path_factory.mktemp("command-catch-up")
    # steps 0..22,499: an artifact and its deployment each
    return d, signed_sqlite_log(d, codec, EVENTS)


def _fold(
    log_db: Path, views_db: Path, codec: Codec, signer: Signer, **kw: Any
) -> tuple[list[int], Progress, SqliteViewStore]:
    """Fold the log into the views as a command does; the events of each batch."""
    log = SqliteEventLog(log_db)
    views = SqliteViewStore(views_db)
    sizes: list[int] = []

    def on_batch(progress: Progress) -> None:
        sizes.append(progress.applied - sum(sizes))

    try:
        progress = Projector(log, views, codec, trust=_trust(signer), **kw).run(on_batch=on_batch)
    finally:
        log.close()
    return sizes, progress, views


@pytest.fixture(scope="module")
def baseline(
    signed: tuple[Path, Signer], codec: Codec, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The views of the same log folded 5000 a batch throughout (a batch_size set by the
    caller is kept throughout: how commands folded before)."""
    d, signer = signed
    views_db = tmp_path_factory.mktemp("baseline") / "views.db"
    sizes, _, views = _fold(d / "log.db", views_db, codec, signer, batch_size=NORMAL)
    assert sizes == [NORMAL] * (EVENTS // NORMAL)
    return views.snapshot()


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "no-prefetch"])
def test_a_backlog_folds_in_large_batches_into_the_same_views(
    signed: tuple[Path, Signer],
    codec: Codec,
    baseline: dict[str, Any],
    tmp_path: Path,
    prefetch: bool,
) -> None:
    d, signer = signed
    views_db = tmp_path / "views.db"
    sizes, progress, views = _fold(d / "log.db", views_db, codec, signer, prefetch_reads=prefetch)
    assert (progress.applied, progress.rejected, progress.undecodable) == (EVENTS, 0, 0)
    # before: [5000] * 9
    assert sizes == [CATCH_UP, CATCH_UP, EVENTS - 2 * CATCH_UP], sizes
    assert progress.checkpoint is None  # no audit key here: the views alone are compared
    assert views.snapshot() == baseline


@pytest.mark.parametrize("prefetch", [True, False], ids=["prefetch", "no-prefetch"])
def test_a_caught_up_home_folds_a_new_event_in_one_small_batch(
    signed: tuple[Path, Signer], codec: Codec, tmp_path: Path, prefetch: bool
) -> None:
    d, signer = signed
    shutil.copyfile(d / "log.db", tmp_path / "log.db")  # the shared log stays as it is
    _fold(tmp_path / "log.db", tmp_path / "views.db", codec, signer, prefetch_reads=prefetch)
    log = SqliteEventLog(tmp_path / "log.db")
    log.append(sign_all(signer, codec, events(EVENTS // 2)[:1]))  # one new event
    log.close()
    sizes, progress, _ = _fold(
        tmp_path / "log.db", tmp_path / "views.db", codec, signer, prefetch_reads=prefetch
    )
    assert (sizes, progress.applied) == ([1], 1)
    # and nothing new: no batch at all
    sizes, progress, _ = _fold(
        tmp_path / "log.db", tmp_path / "views.db", codec, signer, prefetch_reads=prefetch
    )
    assert (sizes, progress.applied) == ([], 0)
