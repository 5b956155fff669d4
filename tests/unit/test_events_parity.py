"""The Python event classes are derived from the .avsc files and agree with them."""

from __future__ import annotations

import dataclasses
from io import BytesIO

import pytest
from fastavro import schemaless_reader, schemaless_writer

from keel.events import generated as g
from keel.schemas.codegen import generate
from keel.schemas.registry import SchemaRegistry
from keel.topics import TOPIC_OF

pytestmark = pytest.mark.unit


def test_generated_module_is_up_to_date(registry: SchemaRegistry) -> None:
    path = g.__file__
    with open(path, encoding="utf-8") as f:
        assert f.read() == generate(registry), "stale: run `keel schemas codegen`"


def test_every_schema_has_a_class_and_a_topic(registry: SchemaRegistry) -> None:
    assert set(g.EVENT_TYPES) == set(registry.names()) == set(TOPIC_OF)


def test_class_fields_match_schema_fields(registry: SchemaRegistry) -> None:
    for name, cls in g.EVENT_TYPES.items():
        schema_fields = [f["name"] for f in registry.latest(name).schema["fields"]]
        assert [f.name for f in dataclasses.fields(cls)] == schema_fields


def test_required_events_exist(registry: SchemaRegistry) -> None:
    required = {
        "DatasetIngested",
        "RecordQuarantined",
        "FeaturesBuilt",
        "ModelTrained",
        "ModelEvaluated",
        "ModelPromoted",
        "PromotionRejected",
        "ModelDeployed",
        "ArtifactRecorded",
        "SchemaReconciled",
        "SchemaReconciliationFailed",
    }
    assert required <= set(registry.names())
    for name in registry.names():
        env = registry.latest(name).schema["fields"][0]
        assert env["name"] == "envelope"
        names = {f["name"] for f in env["type"]["fields"]}
        assert {
            "event_id",
            "event_type",
            "occurred_at",
            "producer",
            "actor",
            "correlation_id",
            "causation_id",
            "subject",
        } <= names


def test_promoted_event_round_trips_through_bare_fastavro(registry: SchemaRegistry) -> None:
    from tests.conftest import make_deployed

    env = make_deployed().envelope
    gate = g.GateResult(
        name="auc", metric="roc_auc", op=">=", threshold=0.9, value=0.95, passed=True, margin=0.05
    )
    event = g.ModelPromoted(
        envelope=env,
        family="f",
        model_id="m",
        env="prod",
        eval_report_id="e",
        metrics={"roc_auc": 0.95},
        gates=(gate,),
        incumbent_model_id=None,
        incumbent_metrics={},
        reason="first model",
    )
    buf = BytesIO()
    schema = registry.latest("ModelPromoted").parsed
    schemaless_writer(buf, schema, event.to_avro())
    buf.seek(0)
    assert g.ModelPromoted.from_avro(schemaless_reader(buf, schema, None)) == event
