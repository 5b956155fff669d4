"""The MLflow gate's pure rules (issue 38, item 3) and the model files' tar (item 2): the
signature as MLflow writes it in MLmodel, its reconciliation with an inference contract, the
verdict's sentence; the same files give the same tar whatever their times and order; a source
Keel cannot read is refused with the reason; an MLflow family's environments."""

from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

import pytest

from keel.errors import KeelError
from keel.project import MlflowGate, MlflowNames, Policy, Project
from keel.promotion import Incumbent, Serving
from keel_services.mlflow_bridge import gate, model_files
from keel_services.mlflow_bridge.sources import sources_of
from keel_services.mlflow_bridge.tracking import Unreadable

pytestmark = pytest.mark.unit

# an MLmodel file as mlflow 3.17.2's pyfunc.log_model writes it (signature inferred from a
# DataFrame with a float and a string column)
MLMODEL = b"""artifact_path: model
flavors:
  python_function:
    cloudpickle_version: 3.1.1
    python_model: python_model.pkl
    python_version: 3.11.2
mlflow_version: 3.17.2
model_id: m-884751af59994657906dc50a96de389f
signature:
  inputs: '[{"type": "double", "name": "age", "required": true}, {"type": "string",
    "name": "plan", "required": true}]'
  outputs: '[{"type": "double", "required": true}]'
  params: null
"""
FIELDS = [
    {"name": "age", "type": "double"},
    {"name": "plan", "type": ["null", "string"]},
    {"name": "churned", "type": "boolean"},
]
SERVING = Serving("prod at 2026-03-01T00:00:00Z")


def up(metric: str) -> bool:
    return metric != "log_loss"


def test_signature_inputs_from_mlmodel_as_mlflow_writes_it() -> None:
    cols = gate.signature_inputs(model_files.mlmodel_doc(MLMODEL))
    assert cols == [gate.Column("age", "double"), gate.Column("plan", "string")]
    assert gate.signature_inputs({"flavors": {}}) is None  # logged without a signature


def test_reconcile_signature_names_each_disagreement() -> None:
    cols = [
        gate.Column("age", "long"),  # 41.5 is no long
        gate.Column("plan", "string"),
        gate.Column("zip", "string"),
        gate.Column("note", "string", required=False),
    ]
    problems = gate.reconcile_signature(FIELDS, ["churned"], cols)
    assert problems == [
        "age: the contract sends double, the model's signature takes long",
        "plan: the contract allows null, the model requires a value",
        "zip: the model requires it (string) but the contract does not send it",
    ]
    ok = [gate.Column("age", "double"), gate.Column("plan", "string", required=False)]
    assert gate.reconcile_signature(FIELDS, ["churned"], ok) == []
    ints = [{"name": "n", "type": "int"}]  # an int reads as a double without loss
    assert gate.reconcile_signature(ints, [], [gate.Column("n", "double")]) == []


def test_verdict_below_threshold_fails_with_the_promote_services_sentence() -> None:
    policy = Policy(thresholds={"roc_auc": 0.9})
    v = gate.judge({"roc_auc": 0.71}, None, policy, up, SERVING)
    assert not v.passed and v.failed == ("roc_auc_threshold",)
    assert v.reason == "failed policy: roc_auc 0.7100 misses >= 0.9 by 0.1900"


def test_verdict_with_contract_and_incumbent() -> None:
    policy = Policy(thresholds={"roc_auc": 0.9}, beat_incumbent={"metric": "roc_auc", "by": 0.0})
    inc = Incumbent("a" * 64, {"roc_auc": 0.93})
    v = gate.judge({"roc_auc": 0.95}, inc, policy, up, SERVING, [], contract="churn")
    assert v.passed and v.reason.startswith("passed policy: roc_auc 0.9500 >= 0.9")
    assert "beats incumbent" in v.reason and v.reason.endswith("signature matches churn")
    bad = gate.judge({"roc_auc": 0.95}, inc, policy, up, SERVING, ["zip: ..."], contract="churn")
    assert bad.failed == (gate.SIGNATURE_GATE,) and "signature vs churn: zip: ..." in bad.reason
    unknown = gate.judge({"roc_auc": 0.95}, None, policy, up, SERVING, None, "no MLmodel", "churn")
    assert not unknown.passed and "signature not checked against churn: no MLmodel" in (
        unknown.reason
    )


def write_model(root: Path, mtime: int) -> None:
    (root / "sub").mkdir(parents=True)
    for rel, data in (("MLmodel", MLMODEL), ("model.pkl", b"\x00\x01"), ("sub/b.txt", b"b")):
        (root / rel).write_bytes(data)
        os.utime(root / rel, (mtime, mtime))


def test_the_same_files_give_the_same_tar(tmp_path: Path) -> None:
    write_model(tmp_path / "one", 1_000_000)
    write_model(tmp_path / "two", 2_000_000)
    (tmp_path / "two" / "model.pkl").chmod(0o600)
    a = model_files.fetch(str(tmp_path / "one"), None, tmp_path)
    b = model_files.fetch((tmp_path / "two").as_uri(), None, tmp_path)  # file:// too
    assert a.tar.read_bytes() == b.tar.read_bytes()
    assert [f["path"] for f in a.files] == ["MLmodel", "model.pkl", "sub/b.txt"]
    assert a.files[1]["sha256"] == hashlib.sha256(b"\x00\x01").hexdigest()
    assert a.mlmodel == MLMODEL
    with tarfile.open(a.tar) as tar:
        assert {(m.name, m.mtime, m.mode) for m in tar.getmembers()} == {
            ("MLmodel", 0, 0o644),
            ("model.pkl", 0, 0o644),
            ("sub/b.txt", 0, 0o644),
        }


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("s3://bucket/models/1", "not s3://"),
        ("/nowhere/at/all", "does not exist on the bridge's machine"),
        ("models:/m-abc", "no [mlflow] tracking_uri"),
        ("runs:/abc/model", "no [mlflow] tracking_uri"),
        ("mlflow-artifacts:/0/models/m-1/artifacts", "no [mlflow] tracking_uri"),
    ],
)
def test_unreadable_sources_say_why(source: str, says: str, tmp_path: Path) -> None:
    with pytest.raises(Unreadable) as exc:
        model_files.fetch(source, None, tmp_path)
    assert says in str(exc.value)
    assert list(tmp_path.iterdir()) == []  # no temporary tar left behind


def test_an_mlflow_familys_environments_come_from_the_mlflow_tables() -> None:
    gated = MlflowGate(promotion={"prod": Policy(thresholds={"roc_auc": 0.9})})
    project = Project(
        families={},
        mlflow=MlflowNames(environments={"champion": "live"}, gates={"churn": gated}),
    )
    assert project.environments("churn") == ["live", "prod"]
    with pytest.raises(Exception, match="unknown family"):
        Project(families={}).environments("churn")


def test_a_gates_contract_is_read_when_the_bridge_starts(tmp_path: Path) -> None:
    gated = MlflowGate(
        contract=Path("missing.avsc"), promotion={"prod": Policy(thresholds={"roc_auc": 0.9})}
    )
    project = Project(families={}, mlflow=MlflowNames(gates={"churn": gated}), root=tmp_path)
    with pytest.raises(KeelError, match=r"missing\.avsc does not exist"):
        sources_of(project)
    (tmp_path / "missing.avsc").write_text(
        '{"type": "record", "name": "churn", "fields": [{"name": "age", "type": "double"}]}'
    )
    assert sources_of(project).contracts["churn"].fields == [{"name": "age", "type": "double"}]
