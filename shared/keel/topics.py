"""Which topic (bounded context) each event type lives on. One table, used by every backend."""

from __future__ import annotations

from keel.errors import KeelError

TOPIC_OF: dict[str, str] = {
    "DatasetIngested": "ingest",
    "RecordQuarantined": "quarantine",
    "EventQuarantined": "quarantine",
    "FeaturesBuilt": "features",
    "ModelTrained": "training",
    "ModelEvaluated": "training",
    "SchemaReconciled": "training",
    "SchemaReconciliationFailed": "training",
    "ModelPromoted": "registry",
    "PromotionRejected": "registry",
    "ModelDeployed": "deployments",
    "ArtifactRecorded": "artifacts",
}

EVENT_TOPICS: tuple[str, ...] = tuple(sorted(set(TOPIC_OF.values())))


def topic_for(event_type: str) -> str:
    try:
        return TOPIC_OF[event_type]
    except KeyError:
        raise KeelError(
            f"no topic is declared for event type {event_type!r}",
            hint="add it to keel.topics.TOPIC_OF",
        ) from None
