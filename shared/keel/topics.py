"""Which topic (bounded context) each event type lives on. One table, used by every backend."""

from __future__ import annotations

from keel.errors import KeelError

TOPIC_OF: dict[str, str] = {
    "DatasetIngested": "ingest",
    "RecordQuarantined": "quarantine",
    "EventQuarantined": "quarantine",
    "FeaturesBuilt": "features",
    "RetrainRequested": "training",
    "ModelTrained": "training",
    "ModelEvaluated": "training",
    "TrainingFailed": "training",
    "SchemaReconciled": "training",
    "SchemaReconciliationFailed": "training",
    "ModelPromoted": "registry",
    "PromotionRejected": "registry",
    "PromotionPending": "registry",
    "PromotionReviewed": "registry",
    "ModelDeployed": "deployments",
    "ServingStatsRecorded": "deployments",  # what a serving process saw (skew checks)
    "DriftDetected": "deployments",
    "ArtifactRecorded": "artifacts",
    "ArtifactRejected": "artifacts",
    "AuditRecord": "audit",  # the hash chain of earlier versions (decision 0009 replaced it)
    "Checkpoint": "audit",
    # where the projector stored a views snapshot (a fresh audit API replica starts from it)
    "ViewsSnapshotted": "audit",
    # The keyring is part of the trail (decision 0022): one subject, so one ordered partition.
    "KeyAdded": "keyring",
    "KeyRotated": "keyring",
    "KeyRetired": "keyring",
    "UnsignedHistoryAdopted": "keyring",
    # a deliberate restore, declared by the admin (`keel audit reset-trust`): a trust act, so
    # it sits with the keyring the admin signs
    "TrustReset": "keyring",
}

AUDIT_TOPIC = "audit"
# Writer schemas by fingerprint (compacted): every writer announces its schemas there.
SCHEMAS_TOPIC = "schemas"
# The topics facts are recorded on; the audit topic is derived from them by the projector.
EVENT_TOPICS: tuple[str, ...] = tuple(sorted(set(TOPIC_OF.values()) - {AUDIT_TOPIC}))


def topic_for(event_type: str) -> str:
    try:
        return TOPIC_OF[event_type]
    except KeyError:
        raise KeelError(
            f"no topic is declared for event type {event_type!r}",
            hint="add it to keel.topics.TOPIC_OF",
        ) from None
