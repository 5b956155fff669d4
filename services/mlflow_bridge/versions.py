"""A registered version, recorded: the model artifact holds the model's files as one
deterministic tar when Keel can read the source (model_files), else the version's document saying
why not; the document (source URI, run ID, tags, description, the logged signature, what became
of the bytes) is always the model's child artifact `mlflow_model_version`, which the gate reads
the signature from."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keel.artifacts.ids import ArtifactSpec
from keel_services.mlflow_bridge import gate, model_files
from keel_services.mlflow_bridge.domain import (
    CODE_VERSION,
    VersionCreated,
    model_id,
    model_params,
    version_document,
)
from keel_services.mlflow_bridge.tracking import Tracking, Unreadable

if TYPE_CHECKING:
    from keel_services.mlflow_bridge.handlers import Recorder

VERSION_DOC = "mlflow_model_version"


def record_version(
    rec: Recorder,
    spec: ArtifactSpec,
    fact: VersionCreated,
    at: datetime,
    actor: str,
    tracking: Tracking | None,
) -> None:
    """The model artifact (its files when readable, else its document saying why not) and the
    version's document as its child, with the logged signature when there is one."""
    doc: dict[str, Any] = version_document(fact)
    try:
        files = model_files.fetch(fact.source, tracking, rec.ctx.rt.settings.home)
    except Unreadable as exc:
        doc["model_bytes"] = {"stored": False, "why": str(exc)}
        doc["signature_unknown"] = f"the model's files were not read: {exc}"
        rec.artifact(spec, doc, at, actor)
    else:
        try:
            doc["model_bytes"] = {
                "stored": True,
                "location": files.location,
                "format": "tar",
                "files": files.files,
            }
            signature(doc, files.mlmodel)
            rec.file_artifact(spec, files.tar, at, actor)
        finally:
            files.tar.unlink(missing_ok=True)
    child = ArtifactSpec(
        VERSION_DOC, CODE_VERSION, model_params(fact.name, fact.version), [spec.id]
    )
    rec.artifact(child, doc, at, actor)


def signature(doc: dict[str, Any], mlmodel: bytes | None) -> None:
    """The logged signature's inputs into the version's document, or why there are none."""
    if mlmodel is None:
        doc["signature_unknown"] = "the model's files hold no MLmodel file"
        return
    try:
        inputs = gate.signature_inputs(model_files.mlmodel_doc(mlmodel))
    except (Unreadable, ValueError) as exc:
        doc["signature_unknown"] = f"MLmodel unreadable: {exc}"
        return
    if inputs is None:
        doc["signature_unknown"] = "the model was logged without a column signature"
    else:
        doc["signature"] = [c.__dict__ for c in inputs]


def version_doc(rec: Recorder, name: str, version: str) -> dict[str, Any] | None:
    """The version's document as recorded (None: Keel never recorded the version)."""
    store = rec.ctx.rt.artifacts
    child = ArtifactSpec(
        VERSION_DOC, CODE_VERSION, model_params(name, version), [model_id(name, version)]
    )
    for aid in (child.id, model_id(name, version)):  # versions recorded before the child existed
        if store.exists(aid):
            try:
                out: dict[str, Any] = json.loads(store.read_bytes(aid).splitlines()[0])
                return out
            except (ValueError, IndexError):
                continue  # the model's own bytes (a tar), not a document
    return None
