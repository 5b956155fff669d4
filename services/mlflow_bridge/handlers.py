"""A registry fact -> Keel events, recorded in one append (one transaction): a delivery is in
the log whole or not at all, so acknowledging it after `record` returns never loses one and a
retry after a crash never records half of one twice.

- a registered model: an artifact `mlflow_registered_model` (its name, tags, description)
- a model version: an artifact of kind `model` (ID from name and version; its bytes: source
  URI, run ID, tags, description)
- a version tag set: an `annotation` artifact whose parent is the version
- an alias set (created or moved): ModelDeployed kind `alias` of the version to the environment
  named like the alias; deleted: ModelDeployed kind `withdrawn` (nothing serves from then on)
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.ids import ArtifactSpec
from keel.artifacts.recording import recorded_event
from keel.events import Event, envelope
from keel.events import generated as g
from keel.pipeline import Context
from keel.service import service_code_version
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
    model_params,
    version_document,
)

SERVICE = "mlflow_bridge"
ALIAS, WITHDRAWN, IMPORT = "alias", "withdrawn", "import"


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
            service=SERVICE,
            code_version=service_code_version(SERVICE),
            actor=actor,
            correlation_id=self.cause,
            occurred_at=at,
            causation_id=self.cause,
            event_id=self.ids[n] if self.ids and n < len(self.ids) else None,
        )

    def artifact(self, spec: ArtifactSpec, doc: object, at: datetime, actor: str) -> str:
        """Store the document's bytes under the spec's ID; announce it unless the log has."""
        store = self.ctx.rt.artifacts
        result = store.put_bytes(spec, canonical_lines([doc]))
        if result.created or store.unannounced(result.info.id):
            event = recorded_event(
                result.info,
                service=SERVICE,
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


def model_id(name: str, version: str) -> str:
    return ArtifactSpec(MODEL_KIND, CODE_VERSION, model_params(name, version)).id


def record(rec: Recorder, fact: Fact, at: datetime, names: Names, actor: str) -> None:
    """The events stating `fact` (business time `at`), added to `rec`."""
    if isinstance(fact, ModelRegistered):
        spec = ArtifactSpec("mlflow_registered_model", CODE_VERSION, {"model": fact.name})
        doc = {"model": fact.name, "tags": fact.tags, "description": fact.description}
        # a later description or tag change is another fact: keep the first as registered
        if not rec.ctx.rt.artifacts.exists(spec.id):
            rec.artifact(spec, doc, at, actor)
    elif isinstance(fact, VersionCreated):
        spec = ArtifactSpec(MODEL_KIND, CODE_VERSION, model_params(fact.name, fact.version))
        if not rec.ctx.rt.artifacts.exists(spec.id) or rec.ctx.rt.artifacts.unannounced(spec.id):
            rec.artifact(spec, version_document(fact), at, actor)
    elif isinstance(fact, TagSet):
        params = {"key": fact.key, "value": fact.value, "set_at": at.isoformat()}
        spec = ArtifactSpec("annotation", CODE_VERSION, params, [model_id(fact.name, fact.version)])
        rec.artifact(spec, {**params, "model": fact.name, "version": fact.version}, at, actor)
    elif isinstance(fact, AliasSet):
        reason = f"MLflow alias {fact.alias!r} set to {fact.name} version {fact.version}"
        deploy(rec, names.family(fact.name), names.env(fact.alias), fact, at, ALIAS, reason, actor)
    elif isinstance(fact, AliasDeleted):
        family, env = names.family(fact.name), names.env(fact.alias)
        current = rec.ctx.read.serving_at(family, env, at)
        if current is None:
            return  # nothing Keel knows of serves there: nothing ends
        gone = AliasSet(fact.name, fact.alias, "")
        reason = f"MLflow alias {fact.alias!r} of {fact.name} deleted: nothing serves {env}"
        deploy(rec, family, env, gone, at, WITHDRAWN, reason, actor, current.model_id)


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
    spec = ArtifactSpec("deployment_manifest", service_code_version(SERVICE), doc, [target])
    manifest = rec.artifact(spec, doc, at, actor)
    rec.events.append(
        g.ModelDeployed(
            envelope=rec.envelope("ModelDeployed", f"{family}/{env}", at, actor),
            family=family,
            env=env,
            model_id=target,
            manifest_id=manifest,
            previous_model_id=previous,
            kind=kind,
            reason=reason,
        )
    )
