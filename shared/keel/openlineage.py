"""Keel's runs as OpenLineage run events (openlineage-python), for Marquez and the other tools
teams already run.

Each pipeline fact is one run of a job (namespace `keel`, job `<family>.<step>`): START and
then COMPLETE (FAIL for TrainingFailed), with the run ID the Keel event's ID (a UUID) and the
event's business time. Datasets are Keel artifacts (namespace `keel://artifacts`, name the
artifact ID) or the source file of an ingest (namespace `file`):

  DatasetIngested   ingest    source file -> dataset (schema from the training contract; rows;
                              quarantine counts as a `keel_quarantine` facet)
  FeaturesBuilt     features  datasets -> feature set (rows)
  ModelTrained      train     feature sets (their stats as data-quality metrics) -> model
  ModelEvaluated    evaluate  model, held-out dataset -> eval report (metrics as a run facet)
  ModelPromoted / PromotionRejected / PromotionPending
                    promote   model, eval report -> (the decision as a run facet)
  ModelDeployed     deploy    model -> deployment manifest
  TrainingFailed    the stage that failed: FAIL, with the error message

`keel lineage export --openlineage file:PATH | stdout | http://host:port` sends the history;
with KEEL_OPENLINEAGE set the same way every Keel process sends what it records, as it
records it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from typing import Any

from keel.audit import keys
from keel.extras import need

# Said in one line before the imports below fail (Keel's lineage extra).
need("lineage", "openlineage", "attr")

import attr
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    RunFacet,
    error_message_run,
    schema_dataset,
)
from openlineage.client.facet_v2 import (
    data_quality_metrics_input_dataset as dq,
)
from openlineage.client.facet_v2 import (
    output_statistics_output_dataset as stats,
)

from keel import __version__
from keel.errors import KeelError
from keel.events import generated as g

PRODUCER = f"https://github.com/keel-ml/keel/tree/v{__version__}"
NAMESPACE = "keel"
ARTIFACTS = "keel://artifacts"
SCHEMA_BASE = "https://keel-ml.github.io/openlineage"


@attr.define
class KeelRunFacet(RunFacet):  # type: ignore[misc]
    """The Keel event behind the run: its type, ID, actor and what it decided or measured."""

    event_type: str
    event_id: str
    actor: str
    details: dict[str, Any] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/KeelRunFacet.json"


@attr.define
class KeelQuarantineFacet(DatasetFacet):  # type: ignore[misc]
    """Records read, accepted into the dataset and quarantined by the ingest."""

    records_in: int
    accepted: int
    quarantined: int

    @staticmethod
    def _get_schema() -> str:
        return f"{SCHEMA_BASE}/KeelQuarantineFacet.json"


def _artifact(aid: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": ARTIFACTS, "name": aid, "facets": facets}


class Mapper:
    """Keel events -> OpenLineage run events. `contract(family)` gives the training contract's
    Avro schema (for schema facets); `stats(feature_set_id)` a feature set's stats document."""

    def __init__(
        self,
        contract: Callable[[str], dict[str, Any] | None] = lambda _f: None,
        stats: Callable[[str], dict[str, Any] | None] = lambda _fs: None,
    ) -> None:
        self.contract, self.stats = cache(contract), stats

    def events(self, event: Any) -> list[RunEvent]:
        shape = self._shape(event)
        if shape is None:
            return []
        step, inputs, outputs, details = shape
        env = event.envelope
        job = Job(namespace=NAMESPACE, name=f"{getattr(event, 'family', 'keel')}.{step}")
        facets: dict[str, Any] = {
            "keel": KeelRunFacet(
                event_type=event.EVENT_TYPE,
                event_id=env.event_id,
                actor=env.actor,
                details=details,
            )
        }
        failed = isinstance(event, g.TrainingFailed)
        if failed:
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{event.error}: {event.reason}", programmingLanguage="python"
            )
        when = env.occurred_at.isoformat()
        start = RunEvent(
            eventType=RunState.START,
            eventTime=when,
            run=Run(runId=env.event_id),
            job=job,
            producer=PRODUCER,
            inputs=[InputDataset(**i) for i in inputs],
        )
        end = RunEvent(
            eventType=RunState.FAIL if failed else RunState.COMPLETE,
            eventTime=when,
            run=Run(runId=env.event_id, facets=facets),
            job=job,
            producer=PRODUCER,
            inputs=[InputDataset(**i) for i in inputs],
            outputs=[OutputDataset(**o) for o in outputs],
        )
        return [start, end]

    def _shape(
        self, e: Any
    ) -> tuple[str, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]] | None:
        if isinstance(e, g.DatasetIngested):
            out = _artifact(
                e.dataset_id,
                keel_quarantine=KeelQuarantineFacet(
                    records_in=e.records_in, accepted=e.accepted, quarantined=e.quarantined
                ),
            )
            schema = self._schema(e.family)
            if schema is not None:
                out["facets"]["schema"] = schema
            out["outputFacets"] = {
                "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=e.accepted)
            }
            src = {"namespace": "file", "name": e.source_name, "facets": {}}
            return "ingest", [src], [out], {"period": e.period, "contract": e.contract_fingerprint}
        if isinstance(e, g.FeaturesBuilt):
            out = _artifact(e.feature_set_id)
            out["outputFacets"] = {
                "outputStatistics": stats.OutputStatisticsOutputDatasetFacet(rowCount=e.rows)
            }
            ins = [_artifact(d) for d in e.dataset_ids]
            return "features", ins, [out, _artifact(e.feature_stats_id)], {"transform": e.transform}
        if isinstance(e, g.ModelTrained):
            ins = [self._feature_input(fs) for fs in e.feature_set_ids]
            details = {"trainer": e.trainer, "params": dict(e.params)}
            return "train", ins, [_artifact(e.model_id)], details
        if isinstance(e, g.ModelEvaluated):
            ins = [_artifact(e.model_id), _artifact(e.eval_dataset_id)]
            return "evaluate", ins, [_artifact(e.eval_report_id)], {"metrics": dict(e.metrics)}
        if isinstance(e, g.ModelPromoted | g.PromotionRejected | g.PromotionPending):
            ins = [_artifact(e.model_id), _artifact(e.eval_report_id)]
            decided: dict[str, Any] = {"env": e.env, "decision": e.EVENT_TYPE, "reason": e.reason}
            return "promote", ins, [], decided
        if isinstance(e, g.ModelDeployed):
            deployed: dict[str, Any] = {
                "env": e.env,
                "kind": e.kind,
                "previous_model_id": e.previous_model_id,
            }
            return "deploy", [_artifact(e.model_id)], [_artifact(e.manifest_id)], deployed
        if isinstance(e, g.TrainingFailed):
            return e.stage, [_artifact(i) for i in e.input_ids], [], {"entry_point": e.entry_point}
        return None

    def _schema(self, family: str) -> Any:
        avro = self.contract(family)
        if not avro:
            return None
        fields = [
            schema_dataset.SchemaDatasetFacetFields(name=f["name"], type=_avro_type(f["type"]))
            for f in avro.get("fields", [])
        ]
        return schema_dataset.SchemaDatasetFacet(fields=fields)

    def _feature_input(self, fs: str) -> dict[str, Any]:
        doc = self.stats(fs)
        out = _artifact(fs)
        if doc:
            metrics = {
                name: dq.ColumnMetrics(
                    nullCount=c.get("nulls"),
                    count=c.get("count"),
                    min=c.get("min"),
                    max=c.get("max"),
                    quantiles={
                        k.removeprefix("p"): v for k, v in (c.get("quantiles") or {}).items()
                    },
                )
                for name, c in doc.get("features", {}).items()
            }
            out["inputFacets"] = {
                "dataQualityMetrics": dq.DataQualityMetricsInputDatasetFacet(
                    columnMetrics=metrics, rowCount=doc.get("rows")
                )
            }
        return out


def mapper_for(rt: Any, project_path: Any) -> Mapper:
    """A Mapper reading contracts from keel.toml and feature stats from the artifact store."""
    from keel.project import load_project

    try:
        project = load_project(project_path)
    except KeelError:
        project = None  # no keel.toml here: datasets go without schema facets

    def contract(family: str) -> dict[str, Any] | None:
        if project is None or family not in project.families:
            return None
        schema: dict[str, Any] = project.contracts(family)[0].schema
        return schema

    def feature_stats(fs: str) -> dict[str, Any] | None:
        doc = rt.views.get(keys.featureset(fs))
        if not doc or not doc.get("stats_id"):
            return None
        try:
            return dict(json.loads(rt.artifacts.read_bytes(doc["stats_id"]).splitlines()[0]))
        except (KeelError, ValueError, IndexError):
            return None

    return Mapper(contract, feature_stats)


def _avro_type(t: Any) -> str:
    if isinstance(t, list):
        return "|".join(_avro_type(x) for x in t)
    if isinstance(t, dict):
        return str(t.get("logicalType") or t.get("type"))
    return str(t)


class Sink:
    """Where run events go. Files and stdout are written directly (one open file, the client's
    own serializer): the client's emit re-reads the environment and reopens the file for every
    event, which made a history export ~2x slower. HTTP goes through the client (its session,
    retries and Marquez's endpoint)."""

    def __init__(self, target: str) -> None:
        import sys

        self.target, self._client, self._file = target, None, None
        if target == "stdout":
            self._file = sys.stdout
        elif target.startswith("file:"):
            self._file = open(target.removeprefix("file:"), "a", encoding="utf-8")  # noqa: SIM115
        elif target.startswith(("http://", "https://")):
            from openlineage.client import OpenLineageClient
            from openlineage.client.transport.http import HttpConfig, HttpTransport

            self._client = OpenLineageClient(transport=HttpTransport(HttpConfig(url=target)))
        else:
            raise KeelError(
                f"--openlineage {target!r} is not file:PATH, stdout or an http(s) URL",
                hint="e.g. --openlineage file:lineage.jsonl or --openlineage http://localhost:5000",
            )

    def emit(self, event: RunEvent) -> None:
        from openlineage.client.serde import Serde

        if self._client is not None:
            self._client.emit(event)
        elif self._file is not None:
            self._file.write(Serde.to_json(event) + "\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            if self.target.startswith("file:"):
                self._file.close()


def as_json(event: RunEvent) -> dict[str, Any]:
    from openlineage.client.serde import Serde

    return dict(json.loads(Serde.to_json(event)))


def run_events(mapper: Mapper, events: Iterable[Any]) -> Iterator[RunEvent]:
    for e in events:
        yield from mapper.events(e)
