"""A registry fact -> Keel events, recorded in one append (one transaction): a delivery is in
the log whole or not at all, so acknowledging it after `record` returns never loses one and a
retry after a crash never records half of one twice.

- a registered model: an artifact `mlflow_registered_model` (its name, tags, description)
- a model version (versions.py): an artifact of kind `model` (ID from name and version), the
  model's files as one deterministic tar when Keel can read the source (model_files), else the
  version's document saying why not; and its document (source URI, run ID, tags, description,
  the logged signature, what became of the bytes) as a child artifact `mlflow_model_version`
- a version tag set: an `annotation` artifact whose parent is the version
- an alias set (created or moved): ModelDeployed kind `alias` of the version to the environment
  named like the alias; deleted: ModelDeployed kind `withdrawn` (nothing serves from then on)
- with a gate for the family and environment (`[mlflow.gates.F]`): the move's verdict (gate.py)
  as an artifact `mlflow_gate_verdict`, named in the deployment's reason ("passed policy: ..."
  or "failed policy: ...") and eval_report_id; a failed one also as a PromotionRejected
  (trigger `mlflow-alias`), so the registry's history and the console mark it
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec
from keel.artifacts.recording import recorded_event
from keel.artifacts.store import PutResult
from keel.events import Event, envelope
from keel.events import generated as g
from keel.metrics import BUILTIN
from keel.pipeline import Context
from keel.project import MlflowGate
from keel.promotion import Incumbent, Serving
from keel.registry_events import model_deployed, promotion_rejected
from keel.service import Producer, service_code_version
from keel_services.mlflow_bridge import gate
from keel_services.mlflow_bridge.domain import (
    CODE_VERSION,
    MODEL_KIND,
    AliasDeleted,
    AliasSet,
    Fact,
    ModelRegistered,
    Names,
    TagSet,
    VersionCreated,
    model_id,
    model_params,
)
from keel_services.mlflow_bridge.sources import Sources, run_metrics
from keel_services.mlflow_bridge.versions import record_version, version_doc

SERVICE = Producer("mlflow_bridge", __package__ or __name__)
ALIAS, WITHDRAWN, IMPORT = "alias", "withdrawn", "import"
VERDICT = "mlflow_gate_verdict"
TRIGGER = "mlflow-alias"  # a PromotionRejected's trigger: a verdict on a move MLflow made


class Recorder:
    """Collects one delivery's events (deterministic IDs, one cause) and appends them at once."""

    def __init__(self, ctx: Context, cause: str, ids: list[str] | None = None) -> None:
        self.ctx = ctx
        self.cause = cause
        self.ids = ids  # event IDs to use, in order (a webhook's: the same on every retry)
        self.events: list[Event] = []
        self._stored: list[str] = []

    def envelope(self, event_type: str, subject: str, at: datetime, actor: str) -> g.Envelope:
        n = len(self.events)
        return envelope(
            event_type,
            subject=subject,
            service=SERVICE.name,
            code_version=service_code_version(SERVICE),
            actor=actor,
            correlation_id=self.cause,
            occurred_at=at,
            causation_id=self.cause,
            event_id=self.ids[n] if self.ids and n < len(self.ids) else None,
        )

    def artifact(self, spec: ArtifactSpec, doc: object, at: datetime, actor: str) -> str:
        """Store the document's bytes under the spec's ID; announce it unless the log has."""
        return self.announce(
            spec, self.ctx.rt.artifacts.put_bytes(spec, canonical_lines([doc])), at, actor
        )

    def file_artifact(self, spec: ArtifactSpec, path: Path, at: datetime, actor: str) -> str:
        """Store a file's bytes under the spec's ID (streamed); announce it unless the log has."""
        return self.announce(spec, self.ctx.rt.artifacts.put_file(spec, path), at, actor)

    def announce(self, spec: ArtifactSpec, result: PutResult, at: datetime, actor: str) -> str:
        if result.created or self.ctx.rt.artifacts.unannounced(result.info.id):
            event = recorded_event(
                result.info,
                service=SERVICE.name,
                code_version=spec.code_version,
                actor=actor,
                correlation_id=self.cause,
                occurred_at=at,
                causation_id=self.cause,
            )
            env = self.envelope("ArtifactRecorded", result.info.id, at, actor)
            self.events.append(replace(event, envelope=env))
            self._stored.append(result.info.id)
        return result.info.id

    def commit(self) -> list[Event]:
        """Append every event in one batch, then mark the artifacts announced (their outbox
        entries stay until the log holds them, so a crash in between re-announces)."""
        if self.events:
            self.ctx.publish(self.events)
        for artifact_id in self._stored:
            self.ctx.rt.artifacts.announced(artifact_id)
        return self.events


def record(
    rec: Recorder,
    fact: Fact,
    at: datetime,
    names: Names,
    actor: str,
    sources: Sources | None = None,
    judge: bool = True,
) -> None:
    """The events stating `fact` (business time `at`), added to `rec`. `judge`: an alias set
    is judged by the family's gate, if it has one (an import states aliases, not moves)."""
    sources = sources or Sources()
    if isinstance(fact, ModelRegistered):
        spec = ArtifactSpec("mlflow_registered_model", CODE_VERSION, {"model": fact.name})
        doc = {"model": fact.name, "tags": fact.tags, "description": fact.description}
        # a later description or tag change is another fact: keep the first as registered
        if not rec.ctx.rt.artifacts.exists(spec.id):
            rec.artifact(spec, doc, at, actor)
    elif isinstance(fact, VersionCreated):
        spec = ArtifactSpec(MODEL_KIND, CODE_VERSION, model_params(fact.name, fact.version))
        if not rec.ctx.rt.artifacts.exists(spec.id) or rec.ctx.rt.artifacts.unannounced(spec.id):
            record_version(rec, spec, fact, at, actor, sources.tracking)
    elif isinstance(fact, TagSet):
        params = {"key": fact.key, "value": fact.value, "set_at": at.isoformat()}
        spec = ArtifactSpec("annotation", CODE_VERSION, params, [model_id(fact.name, fact.version)])
        rec.artifact(spec, {**params, "model": fact.name, "version": fact.version}, at, actor)
    elif isinstance(fact, AliasSet):
        family, env = names.family(fact.name), names.env(fact.alias)
        reason = f"MLflow alias {fact.alias!r} set to {fact.name} version {fact.version}"
        policy = sources.gates.get(family)
        if judge and policy is not None and env in policy.promotion:
            judged(rec, family, env, fact, at, actor, sources, policy)
        else:
            deploy(rec, family, env, fact, at, ALIAS, reason, actor)
    elif isinstance(fact, AliasDeleted):
        family, env = names.family(fact.name), names.env(fact.alias)
        current = rec.ctx.read.serving_at(family, env, at)
        if current is None:
            return  # nothing Keel knows of serves there: nothing ends
        gone = AliasSet(fact.name, fact.alias, "")
        reason = f"MLflow alias {fact.alias!r} of {fact.name} deleted: nothing serves {env}"
        deploy(rec, family, env, gone, at, WITHDRAWN, reason, actor, current.model_id)


def judged(
    rec: Recorder,
    family: str,
    env: str,
    fact: AliasSet,
    at: datetime,
    actor: str,
    sources: Sources,
    policy: MlflowGate,
) -> None:
    """An alias move judged by the family's gate: the verdict artifact, the deployment naming
    it, and a PromotionRejected when it failed."""
    rules = policy.promotion[env]
    target = model_id(fact.name, fact.version)
    metrics, run_id, no_metrics = run_metrics(sources.tracking, fact.name, fact.version)
    current = rec.ctx.read.serving_at(family, env, at)
    incumbent = None
    if current is not None and current.model_id != target:
        params = (rec.ctx.read.artifact(current.model_id) or {}).get("params") or {}
        inc: dict[str, float] = {}
        if params.get("registry") == "mlflow":
            inc, _, _ = run_metrics(sources.tracking, params["model"], str(params["version"]))
        incumbent = Incumbent(current.model_id, inc)
    problems: list[str] | None = None
    unknown: str | None = None
    contract_name: str | None = None
    contract = sources.contracts.get(family)
    if contract is not None:
        contract_name = contract.name
        doc = version_doc(rec, fact.name, fact.version)
        if doc is None:
            unknown = f"Keel never recorded {fact.name} version {fact.version}"
        elif doc.get("signature") is None:
            unknown = str(doc.get("signature_unknown") or "no signature recorded")
        else:
            columns = [gate.Column(**c) for c in doc["signature"]]
            problems = gate.reconcile_signature(
                contract.fields, [*contract.labels, *contract.metadata], columns
            )

    def higher(metric: str) -> bool:
        if metric in policy.lower_is_better:
            return False
        known = BUILTIN[policy.task].get(metric)
        return known.higher_is_better if known else True

    serving = Serving(
        f"{env} at {at.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}",
        itself=current is not None and current.model_id == target,
    )
    verdict = gate.judge(
        metrics, incumbent, rules, higher, serving, problems, unknown, contract_name
    )
    reason = verdict.reason + (f" (run metrics not read: {no_metrics})" if no_metrics else "")
    doc = {
        "family": family,
        "env": env,
        "model_id": target,
        "mlflow": {
            "model": fact.name,
            "alias": fact.alias,
            "version": fact.version,
            "run_id": run_id,
        },
        "at": at.isoformat(),
        "passed": verdict.passed,
        "reason": reason,
        "metrics": metrics,
        "metrics_unread": no_metrics,
        "incumbent": {"model_id": incumbent.model_id, "metrics": dict(incumbent.metrics)}
        if incumbent
        else None,
        "gates": [r.to_avro() for r in verdict.gates],
        "signature_problems": problems,
        "signature_unknown": unknown,
        "policy_version": rules.version(),
    }
    spec = ArtifactSpec(
        VERDICT,
        service_code_version(SERVICE),
        {"family": family, "env": env, "at": at.isoformat(), "model_id": target},
        [target],
    )
    verdict_id = rec.artifact(spec, doc, at, actor)
    said = f"MLflow alias {fact.alias!r} set to {fact.name} version {fact.version}; {reason}"
    deploy(rec, family, env, fact, at, ALIAS, said, actor, eval_report_id=verdict_id)
    if not verdict.passed:
        rec.events.append(
            promotion_rejected(
                rec.envelope("PromotionRejected", f"{family}/{env}", at, actor),
                family=family,
                model_id=target,
                env=env,
                eval_report_id=verdict_id,
                metrics=metrics,
                gates=verdict.gates,
                failed_gates=verdict.failed,
                incumbent_model_id=incumbent.model_id if incumbent else None,
                incumbent_metrics=dict(incumbent.metrics) if incumbent else {},
                reason=reason,
                trigger=TRIGGER,
                note="after the fact: MLflow had moved the alias; Keel records, it cannot block",
                policy_version=rules.version(),
            )
        )


def deploy(
    rec: Recorder,
    family: str,
    env: str,
    fact: AliasSet,
    at: datetime,
    kind: str,
    reason: str,
    actor: str,
    model: str | None = None,
    eval_report_id: str | None = None,
) -> None:
    """A ModelDeployed (and its manifest) for an alias set, withdrawn or imported."""
    current = rec.ctx.read.serving_at(family, env, at)
    previous = current.model_id if current else None
    target = model or model_id(fact.name, fact.version)
    doc = {
        "family": family,
        "env": env,
        "model_id": target,
        "mlflow": {"model": fact.name, "alias": fact.alias, "version": fact.version or None},
        "previous_model_id": previous,
        "deployed_at": at.isoformat(),
        "kind": kind,
    }
    if eval_report_id is not None:
        doc["verdict_id"] = eval_report_id
    spec = ArtifactSpec("deployment_manifest", service_code_version(SERVICE), doc, [target])
    manifest = rec.artifact(spec, doc, at, actor)
    rec.events.append(
        model_deployed(
            rec.envelope("ModelDeployed", f"{family}/{env}", at, actor),
            family=family,
            env=env,
            model_id=target,
            manifest_id=manifest,
            eval_report_id=eval_report_id,
            previous_model_id=previous,
            kind=kind,
            reason=reason,
        )
    )
