"""ingest: a file in; raw-batch, dataset and quarantine-batch artifacts and events out."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec, file_digest
from keel.contracts import compile_validator
from keel.events import Event
from keel.events import generated as g
from keel.pipeline import Context
from keel.readers import is_csv, read_records
from keel.service import Producer, make_envelope, service_code_version, store
from keel_services.ingest.domain import partition, quarantine_lines

SERVICE = Producer("ingest", __package__ or __name__)  # its identity and code version


@dataclass(frozen=True)
class IngestResult:
    dataset_id: str
    raw_id: str
    quarantine_batch_id: str | None
    records_in: int
    accepted: int
    quarantined: int
    quarantine_reasons: tuple[dict[str, object], ...] = ()  # count per (field, rule)


def ingest_file(
    ctx: Context, family: str, path: Path, at: datetime, period: str | None = None
) -> IngestResult:
    with tempfile.TemporaryDirectory(prefix="keel-ingest-") as spool:
        return _ingest(ctx, family, path, at, period, Path(spool))


def _ingest(
    ctx: Context, family: str, path: Path, at: datetime, period: str | None, spool: Path
) -> IngestResult:
    training, _ = ctx.project.contracts(family)
    cv = service_code_version(SERVICE)
    limits = ctx.project.ingest
    records = read_records(path, limits)  # raises on unreadable files before anything is stored
    # Every record is read and judged before the first byte is stored: a file that turns out
    # unreadable (or over a limit) halfway leaves nothing behind (no raw batch without its
    # DatasetIngested). Judged records go to spool files as they come, so memory stays bounded.
    accepted, quarantined = spool / "dataset.jsonl", spool / "quarantine.jsonl"
    with open(accepted, "wb") as ok, open(quarantined, "wb") as bad:
        outcome = partition(
            records,
            compile_validator(training, coerce_strings=is_csv(path)),
            lambda clean: ok.write(canonical_lines((clean,))),
            lambda r: bad.write(quarantine_lines([r])),
            limits.max_quarantined,
        )
    digest, _ = file_digest(path)

    raw_spec = ArtifactSpec("raw_batch", "external", {"family": family}, content_digest=digest)
    raw = store(ctx, SERVICE, raw_spec, path, at)

    # Dataset and quarantine IDs are fixed by the raw bytes, the contract and the code: known
    # before validation runs.
    params = {"family": family, "contract": training.fingerprint}
    ds_spec = ArtifactSpec("dataset", cv, params, [raw.id])
    dataset = store(ctx, SERVICE, ds_spec, accepted, at)
    q_id = None
    events: list[Event] = []
    if outcome.rejected:
        q_spec = ArtifactSpec("quarantine_batch", cv, params, [raw.id])
        qbatch = store(ctx, SERVICE, q_spec, quarantined, at)
        q_id = qbatch.id
        for r in outcome.rejected:
            first = r.first
            events.append(
                g.RecordQuarantined(
                    envelope=make_envelope(
                        ctx, SERVICE, "RecordQuarantined", f"{family}/{raw.id[:16]}", at
                    ),
                    family=family,
                    source_name=path.name,
                    record_index=r.index,
                    field=first.field,
                    value=first.value,
                    rule=first.rule,
                    reason=r.reason,
                    quarantine_batch_id=q_id,
                )
            )
    events.append(
        g.DatasetIngested(
            envelope=make_envelope(ctx, SERVICE, "DatasetIngested", dataset.id, at),
            family=family,
            dataset_id=dataset.id,
            source_name=path.name,
            source_digest=digest,
            contract_fingerprint=training.fingerprint,
            records_in=outcome.records_in,
            accepted=outcome.accepted,
            quarantined=len(outcome.rejected),
            quarantine_batch_id=q_id,
            period=period,
        )
    )
    ctx.publish(events)
    return IngestResult(
        dataset.id,
        raw.id,
        q_id,
        outcome.records_in,
        outcome.accepted,
        len(outcome.rejected),
        tuple(outcome.reasons),
    )
