"""The project file, `keel.toml`: model families, their contracts, plugins and promotion policy.

Example (the demo writes one like it, naming its own plugins module):

    [families.breast_cancer]
    training_contract = "schemas/contracts/breast_cancer/training.avsc"
    inference_contract = "schemas/contracts/breast_cancer/inference.avsc"
    transform = "plugins:features"                # record -> features, the user's code
    trainer = "plugins:train"                     # (X, y, params) -> fitted model
    trainer_params = { C = 1.0 }
    metrics = ["roc_auc", "accuracy", "log_loss"]
    environments = ["staging", "prod"]

    [families.breast_cancer.promotion.prod]
    thresholds = { roc_auc = 0.95 }
    beat_incumbent = { metric = "roc_auc", by = 0.0 }
    approval = "required"       # optional: people approve before prod changes
    approvers = 1               # how many distinct people
    separate_approver = true    # not the person who triggered the retrain or deploy
"""

from __future__ import annotations

import hashlib
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from keel.contracts import Contract, load_contract
from keel.errors import ConfigError
from keel.metrics import BUILTIN, DEFAULTS, known


class BeatIncumbent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    by: float = 0.0


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    thresholds: dict[str, float] = Field(default_factory=dict)
    beat_incumbent: BeatIncumbent | None = None
    # A policy with no gate promotes everything: allowed only when said (gates = "none").
    gates: Literal["none"] | None = None
    # "required": a passed gate makes a pending promotion that `approvers` distinct people must
    # approve (`keel promote approve`) before it deploys; separate_approver: the person who
    # triggered it (ran the retrain, asked for the deploy) may not be one of them.
    approval: Literal["none", "required"] = "none"
    approvers: int = Field(1, ge=1, le=20)
    separate_approver: bool = False

    def version(self) -> str:
        """A digest of the policy as configured: decisions record which policy they used."""
        doc = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()[:12]

    @model_validator(mode="after")
    def _some_gate(self) -> Policy:
        if not self.thresholds and self.beat_incumbent is None and self.gates != "none":
            raise ValueError(
                'no gate: give thresholds or beat_incumbent, or say gates = "none" to '
                "promote every model"
            )
        return self


class Skew(BaseModel):
    """When served features count as drifted from training (`keel audit skew`):
    `[families.F.skew] psi = 0.2, ks_pvalue = 0.001, window_seconds = 300`."""

    model_config = ConfigDict(extra="forbid")
    psi: float = Field(0.2, gt=0)  # >= 0.2: a significant shift, the usual rule of thumb
    ks_pvalue: float = Field(0.001, gt=0, lt=1)
    window_seconds: float = Field(300.0, ge=0)  # `keel serve` records a window this often; 0: off


class Family(BaseModel):
    model_config = ConfigDict(extra="forbid")
    training_contract: Path
    inference_contract: Path
    transform: str
    trainer: str
    trainer_params: dict[str, Any] = Field(default_factory=dict)
    task: Literal["binary", "multiclass", "regression"] = "binary"
    predictor: str | None = None  # (model, X) -> keel.metrics.Predictions; default: sklearn's
    metrics: list[str] | None = None  # default: keel.metrics.DEFAULTS[task]
    environments: list[str] = Field(default_factory=lambda: ["staging", "prod"])
    promotion: dict[str, Policy] = Field(default_factory=dict)
    skew: Skew = Field(default_factory=lambda: Skew.model_validate({}))

    @field_validator("transform", "trainer", "predictor")
    @classmethod
    def _entry_point(cls, v: str | None) -> str | None:
        if v is not None and ":" not in v:
            raise ValueError(f"{v!r} is not an entry point like package.module:function")
        return v

    @model_validator(mode="after")
    def _metrics_of_the_task(self) -> Family:
        if self.metrics is None:
            self.metrics = list(DEFAULTS[self.task])
        unknown = known(self.task, self.metrics)
        if unknown:
            raise ValueError(
                f"unknown {self.task} metric(s) {unknown}; {self.task} metrics: "
                f"{', '.join(sorted(BUILTIN[self.task]))}, or module:function"
            )
        ungated = [e for e in self.environments if e not in self.promotion]
        if ungated:
            raise ValueError(
                f"environment(s) {ungated} have no promotion policy: give "
                f'[...promotion.{ungated[0]}] thresholds or beat_incumbent, or gates = "none"'
            )
        for env, policy in self.promotion.items():
            gated = [
                *policy.thresholds,
                *([policy.beat_incumbent.metric] if policy.beat_incumbent else []),
            ]
            missing = sorted(set(known(self.task, gated)) | (set(gated) - set(self.metrics)))
            if missing:
                raise ValueError(
                    f"promotion.{env} gates on {missing}, which the family does not measure "
                    f"(metrics = {self.metrics})"
                )
        return self

    @property
    def measured(self) -> list[str]:
        return list(self.metrics or [])


class IngestLimits(BaseModel):
    """What one ingest may hold (`[ingest]` in keel.toml): past a limit the file or body is
    refused whole, before anything is stored. The defaults keep `keel ingest` under ~500 MB of
    memory whatever the input; raising them raises that bound too."""

    model_config = ConfigDict(extra="forbid")
    max_rows: int = Field(1_000_000, ge=1)  # records in one file or body
    max_bytes: int = Field(1 << 30, ge=1)  # decoded bytes of those records (a text file's size)
    # Each quarantined record becomes one RecordQuarantined event, built and signed in memory.
    max_quarantined: int = Field(50_000, ge=0)
    max_body_bytes: int = Field(64 << 20, ge=1)  # one HTTP request (POST .../records)


class Identity(BaseModel):
    """Who may write what (keel.signing): `[identities.NAME] emits = ["ModelDeployed", ...]`;
    `sign_reports = true` lets the identity sign review packs (default: audit alone)."""

    model_config = ConfigDict(extra="forbid")
    emits: list[str] = Field(default_factory=list)
    sign_reports: bool | None = None


class MlflowGate(BaseModel):
    """`[mlflow.gates.FAMILY]`: the optional gate on an MLflow family's alias moves. The
    policy per environment is the promotion policy Keel's own families use (thresholds,
    beat_incumbent), judged on the metrics of the version's MLflow run; `contract` (an
    inference contract .avsc) is what the logged model's signature inputs must match."""

    model_config = ConfigDict(extra="forbid")
    task: Literal["binary", "multiclass", "regression"] = "binary"  # which way a metric is better
    contract: Path | None = None
    promotion: dict[str, Policy] = Field(default_factory=dict)
    # run metrics that are better lower and are not the task's built-ins (e.g. val_loss)
    lower_is_better: list[str] = Field(default_factory=list)


class MlflowNames(BaseModel):
    """`[mlflow]`: MLflow registered-model names and aliases as Keel families and environments
    (keel_services.mlflow_bridge); a name not listed keeps its MLflow name. `tracking_uri`: the
    server the bridge reads runs and model files from; `gates`: see MlflowGate."""

    model_config = ConfigDict(extra="forbid")
    families: dict[str, str] = Field(default_factory=dict)
    environments: dict[str, str] = Field(default_factory=dict)
    tracking_uri: str | None = None
    gates: dict[str, MlflowGate] = Field(default_factory=dict)


class Project(BaseModel):
    model_config = ConfigDict(extra="forbid")
    families: dict[str, Family]
    identities: dict[str, Identity] = Field(default_factory=dict)
    mlflow: MlflowNames = Field(default_factory=MlflowNames)
    ingest: IngestLimits = Field(default_factory=lambda: IngestLimits.model_validate({}))
    root: Path = Path(".")

    def family(self, name: str) -> Family:
        try:
            return self.families[name]
        except KeyError:
            raise ConfigError(
                f"unknown family {name!r}",
                hint=f"families in keel.toml: {', '.join(sorted(self.families)) or 'none'}",
            ) from None

    def environments(self, family: str) -> list[str]:
        """A family's environments: keel.toml's for its own families; for an MLflow family (in
        no [families] table) those its [mlflow] tables name (gates, alias mapping). Unknown
        family and no [mlflow] names: ConfigError, as family() says."""
        if family in self.families:
            return list(self.families[family].environments)
        gate = self.mlflow.gates.get(family)
        named = {*(gate.promotion if gate else ()), *self.mlflow.environments.values()}
        if not named:
            self.family(family)  # raises, naming keel.toml's families
        return sorted(named)

    def contracts(self, name: str) -> tuple[Contract, Contract]:
        fam = self.family(name)
        return (
            load_contract(self.root / fam.training_contract),
            load_contract(self.root / fam.inference_contract),
        )


def load_project(path: Path) -> Project:
    """Parse keel.toml (a directory means its keel.toml); any problem is one ConfigError naming
    the key."""
    if path.is_dir():
        path = path / "keel.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"no project file at {path}",
            hint="create keel.toml (see `keel demo` for a complete one) or pass --project",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read the project file {path}: {exc}",
            hint="KEEL_PROJECT / --project must name a readable keel.toml (or its directory)",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    try:
        project = Project.model_validate({**data, "root": path.parent})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{path}: {key}: {first['msg']}{more}") from None
    # The project's own modules (plugins beside keel.toml) import like installed ones.
    root = str(path.parent.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    for name, fam in project.families.items():
        for env in fam.promotion:
            if env not in fam.environments:
                raise ConfigError(f"{path}: families.{name}.promotion.{env}: not in environments")
    return project
