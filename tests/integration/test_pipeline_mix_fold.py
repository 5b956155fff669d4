"""A retraining pipeline's history (bench.pipeline_mix: every type a pipeline writes, in its
proportions, 50 families x dev/staging/prod) folded by both cores into SQLite and into Redis:
the same views four ways, every event folded natively by the native core.

The fold benches' realistic mix (decision 0027, session 15) is only a fair measure if both
cores fold it alike and natively; this also runs Redis's batched writes and hiredis-packed
reads (keel.views.redis) over a history of many indexes, sets and documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench import pipeline_mix
from bench.bench_projector import fill, signer_in
from keel.audit.projector import Projector
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from keel.signing import Trust
from keel.views.redis import RedisViewStore
from keel.views.sqlite import SqliteViewStore

pytestmark = pytest.mark.integration

EVENTS = 4_000  # ~110 cycles: two rounds of the 50 families, prod's reviews and rejections


def test_pipeline_mix_folds_alike(tmp_path: Path, codec: Codec, redis_url: str) -> None:
    signer = signer_in(tmp_path)
    log = SqliteEventLog(tmp_path / "log.db")
    fill(log, codec, EVENTS, signer, "pipeline")
    kinds = {e.EVENT_TYPE for b in pipeline_mix.batches(EVENTS) for e in b}
    assert len(kinds) == 14, kinds  # the mix's every type is in the log
    snapshots: dict[str, dict[str, Any]] = {}
    for fold in ("python", "native"):
        for backend in ("sqlite", "redis"):
            views: Any = (
                SqliteViewStore(tmp_path / f"views-{fold}.db")
                if backend == "sqlite"
                else RedisViewStore(redis_url, namespace=f"mix-{fold}-{tmp_path.name}:")
            )
            trust = Trust(signer.trust.keys.values(), signer.trust.roles)
            # batches of 700: documents carried across batches, read back from the views
            p = Projector(log, views, codec, trust=trust, fold=fold, batch_size=700)
            progress = p.run(checkpoint=False)
            assert (progress.applied, progress.rejected, progress.undecodable) == (EVENTS, 0, 0)
            if fold == "native":
                assert p.core.python_evolved == 0  # type: ignore[attr-defined]
            snap = views.snapshot()
            snap.pop("tracking")
            snapshots[f"{fold}/{backend}"] = snap
            views.clear()
    first = snapshots["python/sqlite"]
    assert len(first["docs"]) > EVENTS // 2
    for name, snap in snapshots.items():
        assert snap == first, name
