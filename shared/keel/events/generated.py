"""Generated from schemas/events/*.avsc. Do not edit; run `keel schemas codegen`."""

# ruff: noqa: E501
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactRecorded:
    """An immutable, content-addressed artifact was stored."""

    EVENT_TYPE: ClassVar[str] = "ArtifactRecorded"
    envelope: Envelope
    artifact_id: str
    kind: str
    parents: tuple[str, ...]
    code_version: str
    params_json: str
    digest: str
    size: int
    location: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "artifact_id": self.artifact_id,
            "kind": self.kind,
            "parents": list(self.parents),
            "code_version": self.code_version,
            "params_json": self.params_json,
            "digest": self.digest,
            "size": self.size,
            "location": self.location,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ArtifactRecorded:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            artifact_id=r["artifact_id"],
            kind=r["kind"],
            parents=tuple(r["parents"]),
            code_version=r["code_version"],
            params_json=r["params_json"],
            digest=r["digest"],
            size=r["size"],
            location=r["location"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Envelope:
    """Carried by every Keel event: who, when, why and about what."""

    event_id: str
    event_type: str
    occurred_at: datetime
    producer: Producer
    actor: str
    correlation_id: str
    causation_id: str | None = None
    subject: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "producer": self.producer.to_avro(),
            "actor": self.actor,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "subject": self.subject,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> Envelope:
        return cls(
            event_id=r["event_id"],
            event_type=r["event_type"],
            occurred_at=r["occurred_at"],
            producer=Producer.from_avro(r["producer"]),
            actor=r["actor"],
            correlation_id=r["correlation_id"],
            causation_id=r.get("causation_id"),
            subject=r["subject"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Producer:
    service: str
    package_version: str
    code_version: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "package_version": self.package_version,
            "code_version": self.code_version,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> Producer:
        return cls(
            service=r["service"],
            package_version=r["package_version"],
            code_version=r["code_version"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ArtifactRejected:
    """An artifact's bytes failed verification when something was about to use them (deploy, rollback, serve): they do not hash to the digest its signed ArtifactRecorded states, or the blob is gone. Nothing used them."""

    EVENT_TYPE: ClassVar[str] = "ArtifactRejected"
    envelope: Envelope
    artifact_id: str
    action: str
    recorded_digest: str
    actual_digest: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "artifact_id": self.artifact_id,
            "action": self.action,
            "recorded_digest": self.recorded_digest,
            "actual_digest": self.actual_digest,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ArtifactRejected:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            artifact_id=r["artifact_id"],
            action=r["action"],
            recorded_digest=r["recorded_digest"],
            actual_digest=r["actual_digest"],
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditRecord:
    """One link of the audit chain: an event the projector folded, in one total order, hash-chained to the previous link."""

    EVENT_TYPE: ClassVar[str] = "AuditRecord"
    envelope: Envelope
    seq: int
    prev_hash: str
    hash: str
    event_id: str
    event_type: str
    source_topic: str
    source_partition: int
    source_offset: int
    event_sha256: str
    summary: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "seq": self.seq,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "event_sha256": self.event_sha256,
            "summary": self.summary,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> AuditRecord:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            seq=r["seq"],
            prev_hash=r["prev_hash"],
            hash=r["hash"],
            event_id=r["event_id"],
            event_type=r["event_type"],
            source_topic=r["source_topic"],
            source_partition=r["source_partition"],
            source_offset=r["source_offset"],
            event_sha256=r["event_sha256"],
            summary=r["summary"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Checkpoint:
    """The audit projector's signed statement of the log's Merkle trees (RFC 9162), one per topic-partition: sizes and root hashes at a time. Each tree's statement is a C2SP tlog-checkpoint signed note, checkable without Keel."""

    EVENT_TYPE: ClassVar[str] = "Checkpoint"
    envelope: Envelope
    trees: tuple[TreeHead, ...]
    key_id: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "trees": [x.to_avro() for x in self.trees],
            "key_id": self.key_id,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> Checkpoint:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            trees=tuple(TreeHead.from_avro(x) for x in r["trees"]),
            key_id=r["key_id"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TreeHead:
    topic: str
    partition: int
    size: int
    root: str
    note: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "size": self.size,
            "root": self.root,
            "note": self.note,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> TreeHead:
        return cls(
            topic=r["topic"],
            partition=r["partition"],
            size=r["size"],
            root=r["root"],
            note=r["note"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetIngested:
    """Records validated at the boundary became a dataset artifact; the rest were quarantined."""

    EVENT_TYPE: ClassVar[str] = "DatasetIngested"
    envelope: Envelope
    family: str
    dataset_id: str
    source_name: str
    source_digest: str
    contract_fingerprint: str
    records_in: int
    accepted: int
    quarantined: int
    quarantine_batch_id: str | None = None
    period: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "dataset_id": self.dataset_id,
            "source_name": self.source_name,
            "source_digest": self.source_digest,
            "contract_fingerprint": self.contract_fingerprint,
            "records_in": self.records_in,
            "accepted": self.accepted,
            "quarantined": self.quarantined,
            "quarantine_batch_id": self.quarantine_batch_id,
            "period": self.period,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> DatasetIngested:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            dataset_id=r["dataset_id"],
            source_name=r["source_name"],
            source_digest=r["source_digest"],
            contract_fingerprint=r["contract_fingerprint"],
            records_in=r["records_in"],
            accepted=r["accepted"],
            quarantined=r["quarantined"],
            quarantine_batch_id=r.get("quarantine_batch_id"),
            period=r.get("period"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftDetected:
    """Serving features drifted from the serving model's training features beyond the family's thresholds: PSI, and per feature the test that fits its kind (chi-square over value frequencies for binary and discrete features, Kolmogorov-Smirnov for continuous ones)."""

    EVENT_TYPE: ClassVar[str] = "DriftDetected"
    envelope: Envelope
    family: str
    env: str
    model_id: str
    stats_event_id: str
    psi_threshold: float
    ks_pvalue_threshold: float
    features: tuple[FeatureDrift, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "env": self.env,
            "model_id": self.model_id,
            "stats_event_id": self.stats_event_id,
            "psi_threshold": self.psi_threshold,
            "ks_pvalue_threshold": self.ks_pvalue_threshold,
            "features": [x.to_avro() for x in self.features],
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> DriftDetected:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            env=r["env"],
            model_id=r["model_id"],
            stats_event_id=r["stats_event_id"],
            psi_threshold=r["psi_threshold"],
            ks_pvalue_threshold=r["ks_pvalue_threshold"],
            features=tuple(FeatureDrift.from_avro(x) for x in r["features"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    kind: str = 'continuous'
    test: str = 'ks'

    def to_avro(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "psi": self.psi,
            "ks_statistic": self.ks_statistic,
            "ks_pvalue": self.ks_pvalue,
            "kind": self.kind,
            "test": self.test,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FeatureDrift:
        return cls(
            feature=r["feature"],
            psi=r["psi"],
            ks_statistic=r["ks_statistic"],
            ks_pvalue=r["ks_pvalue"],
            kind=r.get("kind", 'continuous'),
            test=r.get("test", 'ks'),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class EventQuarantined:
    """A consumer met event bytes it could not decode and set them aside instead of crashing."""

    EVENT_TYPE: ClassVar[str] = "EventQuarantined"
    envelope: Envelope
    source_topic: str
    source_partition: int
    source_offset: int
    error: str
    reason: str
    raw: bytes

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "source_topic": self.source_topic,
            "source_partition": self.source_partition,
            "source_offset": self.source_offset,
            "error": self.error,
            "reason": self.reason,
            "raw": self.raw,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> EventQuarantined:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            source_topic=r["source_topic"],
            source_partition=r["source_partition"],
            source_offset=r["source_offset"],
            error=r["error"],
            reason=r["reason"],
            raw=r["raw"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class FeaturesBuilt:
    """A feature set and its stats were built from dataset artifacts."""

    EVENT_TYPE: ClassVar[str] = "FeaturesBuilt"
    envelope: Envelope
    family: str
    dataset_ids: tuple[str, ...]
    feature_set_id: str
    feature_stats_id: str
    transform: str
    code_version: str
    rows: int

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "dataset_ids": list(self.dataset_ids),
            "feature_set_id": self.feature_set_id,
            "feature_stats_id": self.feature_stats_id,
            "transform": self.transform,
            "code_version": self.code_version,
            "rows": self.rows,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> FeaturesBuilt:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            dataset_ids=tuple(r["dataset_ids"]),
            feature_set_id=r["feature_set_id"],
            feature_stats_id=r["feature_stats_id"],
            transform=r["transform"],
            code_version=r["code_version"],
            rows=r["rows"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyAdded:
    """A public key now speaks for an identity (keys.toml's working copy follows the trail). Signed by the administrative identity; the first admin key of a trail signs its own addition."""

    EVENT_TYPE: ClassVar[str] = "KeyAdded"
    envelope: Envelope
    identity: str
    key_id: str
    public: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "identity": self.identity,
            "key_id": self.key_id,
            "public": self.public,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> KeyAdded:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            identity=r["identity"],
            key_id=r["key_id"],
            public=r["public"],
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRetired:
    """A key stops signing: retired (what it signed stays valid) or revoked (nothing it signed verifies). Signed by the administrative identity."""

    EVENT_TYPE: ClassVar[str] = "KeyRetired"
    envelope: Envelope
    identity: str
    key_id: str
    status: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "identity": self.identity,
            "key_id": self.key_id,
            "status": self.status,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> KeyRetired:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            identity=r["identity"],
            key_id=r["key_id"],
            status=r["status"],
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class KeyRotated:
    """An identity's new key replaces its active one; the old key becomes retired (what it signed stays valid). Signed by the administrative identity."""

    EVENT_TYPE: ClassVar[str] = "KeyRotated"
    envelope: Envelope
    identity: str
    key_id: str
    public: str
    retired_key_id: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "identity": self.identity,
            "key_id": self.key_id,
            "public": self.public,
            "retired_key_id": self.retired_key_id,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> KeyRotated:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            identity=r["identity"],
            key_id=r["key_id"],
            public=r["public"],
            retired_key_id=r["retired_key_id"],
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelDeployed:
    """A deployment manifest now names the model serving an environment."""

    EVENT_TYPE: ClassVar[str] = "ModelDeployed"
    envelope: Envelope
    family: str
    env: str
    model_id: str
    manifest_id: str
    eval_report_id: str | None = None
    promotion_event_id: str | None = None
    previous_model_id: str | None = None
    kind: str
    reason: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "env": self.env,
            "model_id": self.model_id,
            "manifest_id": self.manifest_id,
            "eval_report_id": self.eval_report_id,
            "promotion_event_id": self.promotion_event_id,
            "previous_model_id": self.previous_model_id,
            "kind": self.kind,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ModelDeployed:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            env=r["env"],
            model_id=r["model_id"],
            manifest_id=r["manifest_id"],
            eval_report_id=r.get("eval_report_id"),
            promotion_event_id=r.get("promotion_event_id"),
            previous_model_id=r.get("previous_model_id"),
            kind=r["kind"],
            reason=r.get("reason"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelEvaluated:
    """A model was evaluated on a held-out dataset version; the report is an artifact."""

    EVENT_TYPE: ClassVar[str] = "ModelEvaluated"
    envelope: Envelope
    family: str
    model_id: str
    eval_report_id: str
    eval_dataset_id: str
    metrics: Mapping[str, float]

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "eval_report_id": self.eval_report_id,
            "eval_dataset_id": self.eval_dataset_id,
            "metrics": dict(self.metrics),
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ModelEvaluated:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            eval_report_id=r["eval_report_id"],
            eval_dataset_id=r["eval_dataset_id"],
            metrics=dict(r["metrics"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelPromoted:
    """The registry recorded a promotion, with its evidence. Never changed afterwards."""

    EVENT_TYPE: ClassVar[str] = "ModelPromoted"
    envelope: Envelope
    family: str
    model_id: str
    env: str
    eval_report_id: str
    metrics: Mapping[str, float]
    gates: tuple[GateResult, ...]
    incumbent_model_id: str | None = None
    incumbent_metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str
    trigger: str = 'pipeline'
    note: str | None = None
    policy_version: str | None = None
    approved_by: tuple[str, ...] = ()
    pending_event_id: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "env": self.env,
            "eval_report_id": self.eval_report_id,
            "metrics": dict(self.metrics),
            "gates": [x.to_avro() for x in self.gates],
            "incumbent_model_id": self.incumbent_model_id,
            "incumbent_metrics": dict(self.incumbent_metrics),
            "reason": self.reason,
            "trigger": self.trigger,
            "note": self.note,
            "policy_version": self.policy_version,
            "approved_by": list(self.approved_by),
            "pending_event_id": self.pending_event_id,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ModelPromoted:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            env=r["env"],
            eval_report_id=r["eval_report_id"],
            metrics=dict(r["metrics"]),
            gates=tuple(GateResult.from_avro(x) for x in r["gates"]),
            incumbent_model_id=r.get("incumbent_model_id"),
            incumbent_metrics=dict(r.get("incumbent_metrics") or {}),
            reason=r["reason"],
            trigger=r.get("trigger", 'pipeline'),
            note=r.get("note"),
            policy_version=r.get("policy_version"),
            approved_by=tuple(r.get("approved_by") or []),
            pending_event_id=r.get("pending_event_id"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class GateResult:
    """One promotion gate: a metric compared with a threshold or with the incumbent."""

    name: str
    metric: str
    op: str
    threshold: float
    value: float | None = None
    passed: bool
    margin: float | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "passed": self.passed,
            "margin": self.margin,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> GateResult:
        return cls(
            name=r["name"],
            metric=r["metric"],
            op=r["op"],
            threshold=r["threshold"],
            value=r.get("value"),
            passed=r["passed"],
            margin=r.get("margin"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelTrained:
    """A model artifact was trained from feature-set artifacts."""

    EVENT_TYPE: ClassVar[str] = "ModelTrained"
    envelope: Envelope
    family: str
    model_id: str
    feature_set_ids: tuple[str, ...]
    trainer: str
    params: Mapping[str, str]
    code_version: str
    reconciliation_event_id: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "feature_set_ids": list(self.feature_set_ids),
            "trainer": self.trainer,
            "params": dict(self.params),
            "code_version": self.code_version,
            "reconciliation_event_id": self.reconciliation_event_id,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ModelTrained:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            feature_set_ids=tuple(r["feature_set_ids"]),
            trainer=r["trainer"],
            params=dict(r["params"]),
            code_version=r["code_version"],
            reconciliation_event_id=r.get("reconciliation_event_id"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PromotionPending:
    """A candidate passed the gate of an environment whose policy requires approval: it waits for people to approve or reject it."""

    EVENT_TYPE: ClassVar[str] = "PromotionPending"
    envelope: Envelope
    family: str
    model_id: str
    env: str
    eval_report_id: str
    metrics: Mapping[str, float]
    gates: tuple[GateResult, ...]
    incumbent_model_id: str | None = None
    incumbent_metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str
    trigger: str = 'pipeline'
    note: str | None = None
    policy_version: str | None = None
    approvals_required: int
    excluded_approvers: tuple[str, ...] = ()

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "env": self.env,
            "eval_report_id": self.eval_report_id,
            "metrics": dict(self.metrics),
            "gates": [x.to_avro() for x in self.gates],
            "incumbent_model_id": self.incumbent_model_id,
            "incumbent_metrics": dict(self.incumbent_metrics),
            "reason": self.reason,
            "trigger": self.trigger,
            "note": self.note,
            "policy_version": self.policy_version,
            "approvals_required": self.approvals_required,
            "excluded_approvers": list(self.excluded_approvers),
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> PromotionPending:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            env=r["env"],
            eval_report_id=r["eval_report_id"],
            metrics=dict(r["metrics"]),
            gates=tuple(GateResult.from_avro(x) for x in r["gates"]),
            incumbent_model_id=r.get("incumbent_model_id"),
            incumbent_metrics=dict(r.get("incumbent_metrics") or {}),
            reason=r["reason"],
            trigger=r.get("trigger", 'pipeline'),
            note=r.get("note"),
            policy_version=r.get("policy_version"),
            approvals_required=r["approvals_required"],
            excluded_approvers=tuple(r.get("excluded_approvers") or []),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PromotionRejected:
    """A candidate failed the promotion gate; the failed gates say by how much."""

    EVENT_TYPE: ClassVar[str] = "PromotionRejected"
    envelope: Envelope
    family: str
    model_id: str
    env: str
    eval_report_id: str
    metrics: Mapping[str, float]
    gates: tuple[GateResult, ...]
    failed_gates: tuple[str, ...]
    incumbent_model_id: str | None = None
    incumbent_metrics: Mapping[str, float] = field(default_factory=dict)
    reason: str
    trigger: str = 'pipeline'
    note: str | None = None
    policy_version: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "env": self.env,
            "eval_report_id": self.eval_report_id,
            "metrics": dict(self.metrics),
            "gates": [x.to_avro() for x in self.gates],
            "failed_gates": list(self.failed_gates),
            "incumbent_model_id": self.incumbent_model_id,
            "incumbent_metrics": dict(self.incumbent_metrics),
            "reason": self.reason,
            "trigger": self.trigger,
            "note": self.note,
            "policy_version": self.policy_version,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> PromotionRejected:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            env=r["env"],
            eval_report_id=r["eval_report_id"],
            metrics=dict(r["metrics"]),
            gates=tuple(GateResult.from_avro(x) for x in r["gates"]),
            failed_gates=tuple(r["failed_gates"]),
            incumbent_model_id=r.get("incumbent_model_id"),
            incumbent_metrics=dict(r.get("incumbent_metrics") or {}),
            reason=r["reason"],
            trigger=r.get("trigger", 'pipeline'),
            note=r.get("note"),
            policy_version=r.get("policy_version"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class PromotionReviewed:
    """A person approved or rejected a pending promotion; the envelope's actor is who."""

    EVENT_TYPE: ClassVar[str] = "PromotionReviewed"
    envelope: Envelope
    family: str
    model_id: str
    env: str
    pending_event_id: str
    verdict: str
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "model_id": self.model_id,
            "env": self.env,
            "pending_event_id": self.pending_event_id,
            "verdict": self.verdict,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> PromotionReviewed:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            model_id=r["model_id"],
            env=r["env"],
            pending_event_id=r["pending_event_id"],
            verdict=r["verdict"],
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordQuarantined:
    """One input record failed the boundary contract and was set aside with the reason."""

    EVENT_TYPE: ClassVar[str] = "RecordQuarantined"
    envelope: Envelope
    family: str
    source_name: str
    record_index: int
    field: str | None = None
    value: str | None = None
    rule: str
    reason: str
    quarantine_batch_id: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "source_name": self.source_name,
            "record_index": self.record_index,
            "field": self.field,
            "value": self.value,
            "rule": self.rule,
            "reason": self.reason,
            "quarantine_batch_id": self.quarantine_batch_id,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> RecordQuarantined:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            source_name=r["source_name"],
            record_index=r["record_index"],
            field=r.get("field"),
            value=r.get("value"),
            rule=r["rule"],
            reason=r["reason"],
            quarantine_batch_id=r.get("quarantine_batch_id"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class RetrainRequested:
    """Someone (a person, a schedule or a policy) asked for a family to be retrained on these datasets and evaluated on the held-out one. The feature service reacts (FeaturesBuilt, caused by this event), then train (ModelTrained, ModelEvaluated)."""

    EVENT_TYPE: ClassVar[str] = "RetrainRequested"
    envelope: Envelope
    family: str
    dataset_ids: tuple[str, ...]
    eval_dataset_id: str
    reason: str | None = None

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "dataset_ids": list(self.dataset_ids),
            "eval_dataset_id": self.eval_dataset_id,
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> RetrainRequested:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            dataset_ids=tuple(r["dataset_ids"]),
            eval_dataset_id=r["eval_dataset_id"],
            reason=r.get("reason"),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemaReconciled:
    """The training and inference contracts of a family were found compatible."""

    EVENT_TYPE: ClassVar[str] = "SchemaReconciled"
    envelope: Envelope
    family: str
    training_fingerprint: str
    inference_fingerprint: str
    stage: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "training_fingerprint": self.training_fingerprint,
            "inference_fingerprint": self.inference_fingerprint,
            "stage": self.stage,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> SchemaReconciled:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            training_fingerprint=r["training_fingerprint"],
            inference_fingerprint=r["inference_fingerprint"],
            stage=r["stage"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SchemaReconciliationFailed:
    """The contracts diverged incompatibly; the family's pipeline stops until fixed."""

    EVENT_TYPE: ClassVar[str] = "SchemaReconciliationFailed"
    envelope: Envelope
    family: str
    training_fingerprint: str
    inference_fingerprint: str
    stage: str
    problems: tuple[ReconciliationProblem, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "training_fingerprint": self.training_fingerprint,
            "inference_fingerprint": self.inference_fingerprint,
            "stage": self.stage,
            "problems": [x.to_avro() for x in self.problems],
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> SchemaReconciliationFailed:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            training_fingerprint=r["training_fingerprint"],
            inference_fingerprint=r["inference_fingerprint"],
            stage=r["stage"],
            problems=tuple(ReconciliationProblem.from_avro(x) for x in r["problems"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ReconciliationProblem:
    field: str
    training_type: str | None = None
    inference_type: str | None = None
    rule: str
    message: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "training_type": self.training_type,
            "inference_type": self.inference_type,
            "rule": self.rule,
            "message": self.message,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ReconciliationProblem:
        return cls(
            field=r["field"],
            training_type=r.get("training_type"),
            inference_type=r.get("inference_type"),
            rule=r["rule"],
            message=r["message"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ServingStatsRecorded:
    """Statistics of the features a serving process received in one window (the same statistics the feature service records for training, plus a bounded sample), for training/serving skew checks."""

    EVENT_TYPE: ClassVar[str] = "ServingStatsRecorded"
    envelope: Envelope
    family: str
    env: str
    model_id: str
    window_start: str
    window_end: str
    requests: int
    stats_json: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "env": self.env,
            "model_id": self.model_id,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "requests": self.requests,
            "stats_json": self.stats_json,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ServingStatsRecorded:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            env=r["env"],
            model_id=r["model_id"],
            window_start=r["window_start"],
            window_end=r["window_end"],
            requests=r["requests"],
            stats_json=r["stats_json"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainingFailed:
    """User code (a transform, trainer, metric or predictor) raised while a retrain ran; nothing of that stage was recorded as done. A rerun with the same inputs starts again from that stage."""

    EVENT_TYPE: ClassVar[str] = "TrainingFailed"
    envelope: Envelope
    family: str
    stage: str
    entry_point: str
    error: str
    reason: str
    input_ids: tuple[str, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "family": self.family,
            "stage": self.stage,
            "entry_point": self.entry_point,
            "error": self.error,
            "reason": self.reason,
            "input_ids": list(self.input_ids),
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> TrainingFailed:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            family=r["family"],
            stage=r["stage"],
            entry_point=r["entry_point"],
            error=r["error"],
            reason=r["reason"],
            input_ids=tuple(r["input_ids"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class TrustReset:
    """The administrative identity declares a deliberate restore: the log no longer extends checkpoints signed before (they are listed), and checkpoints may be signed over the restored log from here on. Every answer after it says so. Written by `keel audit reset-trust --reason`."""

    EVENT_TYPE: ClassVar[str] = "TrustReset"
    envelope: Envelope
    reason: str
    refusal: str
    anchors: tuple[SetAsideCheckpoint, ...]

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "reason": self.reason,
            "refusal": self.refusal,
            "anchors": [x.to_avro() for x in self.anchors],
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> TrustReset:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            reason=r["reason"],
            refusal=r["refusal"],
            anchors=tuple(SetAsideCheckpoint.from_avro(x) for x in r["anchors"]),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class SetAsideCheckpoint:
    held_by: str
    origin: str
    size: int
    root: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "held_by": self.held_by,
            "origin": self.origin,
            "size": self.size,
            "root": self.root,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> SetAsideCheckpoint:
        return cls(
            held_by=r["held_by"],
            origin=r["origin"],
            size=r["size"],
            root=r["root"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class UnsignedHistoryAdopted:
    """The administrative identity vouches for the unsigned records a project wrote before it had keys: per tree, how many leading records and the RFC 9162 root they hash to. Those records are then answered as adopted unsigned history, not as forgeries."""

    EVENT_TYPE: ClassVar[str] = "UnsignedHistoryAdopted"
    envelope: Envelope
    trees: tuple[AdoptedTree, ...]
    reason: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "trees": [x.to_avro() for x in self.trees],
            "reason": self.reason,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> UnsignedHistoryAdopted:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            trees=tuple(AdoptedTree.from_avro(x) for x in r["trees"]),
            reason=r["reason"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class AdoptedTree:
    topic: str
    partition: int
    size: int
    root: str

    def to_avro(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "size": self.size,
            "root": self.root,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> AdoptedTree:
        return cls(
            topic=r["topic"],
            partition=r["partition"],
            size=r["size"],
            root=r["root"],
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class ViewsSnapshotted:
    """The audit projector stored a snapshot of its views in the artifact store: the views' SQLite file and its manifest (a note signed by the audit key), so an audit API replica on any machine finds the newest one on the log, fetches it, verifies it and folds only the tail."""

    EVENT_TYPE: ClassVar[str] = "ViewsSnapshotted"
    envelope: Envelope
    projector: str
    name: str
    views_artifact: str
    manifest_artifact: str
    sha256: str
    size: int
    events: int

    def to_avro(self) -> dict[str, Any]:
        return {
            "envelope": self.envelope.to_avro(),
            "projector": self.projector,
            "name": self.name,
            "views_artifact": self.views_artifact,
            "manifest_artifact": self.manifest_artifact,
            "sha256": self.sha256,
            "size": self.size,
            "events": self.events,
        }

    @classmethod
    def from_avro(cls, r: dict[str, Any]) -> ViewsSnapshotted:
        return cls(
            envelope=Envelope.from_avro(r["envelope"]),
            projector=r["projector"],
            name=r["name"],
            views_artifact=r["views_artifact"],
            manifest_artifact=r["manifest_artifact"],
            sha256=r["sha256"],
            size=r["size"],
            events=r["events"],
        )


Event = ArtifactRecorded | ArtifactRejected | AuditRecord | Checkpoint | DatasetIngested | DriftDetected | EventQuarantined | FeaturesBuilt | KeyAdded | KeyRetired | KeyRotated | ModelDeployed | ModelEvaluated | ModelPromoted | ModelTrained | PromotionPending | PromotionRejected | PromotionReviewed | RecordQuarantined | RetrainRequested | SchemaReconciled | SchemaReconciliationFailed | ServingStatsRecorded | TrainingFailed | TrustReset | UnsignedHistoryAdopted | ViewsSnapshotted

EVENT_TYPES: dict[str, type[Event]] = {
    "ArtifactRecorded": ArtifactRecorded,
    "ArtifactRejected": ArtifactRejected,
    "AuditRecord": AuditRecord,
    "Checkpoint": Checkpoint,
    "DatasetIngested": DatasetIngested,
    "DriftDetected": DriftDetected,
    "EventQuarantined": EventQuarantined,
    "FeaturesBuilt": FeaturesBuilt,
    "KeyAdded": KeyAdded,
    "KeyRetired": KeyRetired,
    "KeyRotated": KeyRotated,
    "ModelDeployed": ModelDeployed,
    "ModelEvaluated": ModelEvaluated,
    "ModelPromoted": ModelPromoted,
    "ModelTrained": ModelTrained,
    "PromotionPending": PromotionPending,
    "PromotionRejected": PromotionRejected,
    "PromotionReviewed": PromotionReviewed,
    "RecordQuarantined": RecordQuarantined,
    "RetrainRequested": RetrainRequested,
    "SchemaReconciled": SchemaReconciled,
    "SchemaReconciliationFailed": SchemaReconciliationFailed,
    "ServingStatsRecorded": ServingStatsRecorded,
    "TrainingFailed": TrainingFailed,
    "TrustReset": TrustReset,
    "UnsignedHistoryAdopted": UnsignedHistoryAdopted,
    "ViewsSnapshotted": ViewsSnapshotted,
}
