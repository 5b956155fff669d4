"""The `keel` command tree as data: each top-level command's name, where it lives and its
one-line help. Nothing here imports a command module: `keel --help` lists this table, and a
command's module is imported only when that command runs (see lazy.py). A unit test checks
every help line against the command's own docstring or Typer help, so the two cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field

APP_HELP = (
    "Keel: schemas checked at every layer, immutable content-addressed artifacts with "
    "lineage, and an audit trail for model-retraining pipelines.\n\n"
    "State lives in KEEL_HOME (default ./.keel). KEEL_BUS and KEEL_VIEWS choose backends "
    "(default: embedded SQLite files inside KEEL_HOME)."
)
VERSION_HELP = "Print Keel's version."
VERSION_OPTION_HELP = "Print Keel's version and exit."


@dataclass(frozen=True)
class Extra:
    """A command defined in one module but listed under another module's group (it needs
    that module's heavier imports, which the group's other commands do without)."""

    name: str
    target: str  # "module:function"
    hidden: bool = False


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "module:function" (a command) or "module:typer_app" (a group)
    help: str  # the first paragraph of its help, as `keel --help` shows it
    group: bool = False
    extras: tuple[Extra, ...] = field(default=())


_CLI = "keel_services.entrypoints.cli."

# In the order `keel --help` lists them: commands first, then groups (Typer's order).
ENTRIES: tuple[Entry, ...] = (
    Entry(
        "init",
        _CLI + "init_cmd:init",
        "Scaffold a working project from a data sample: keel.toml (family, task, metrics,\n"
        "environments, a starter policy), inferred contracts, a plugins module with a plain "
        "feature\ntransform and a default scikit-learn trainer. `keel ingest` and `keel "
        "retrain` then work.",
    ),
    Entry(
        "demo",
        _CLI + "demo_cmd:demo",
        "Run a year of retraining on scikit-learn's breast-cancer data, then answer the audit\n"
        "questions: which model served prod on a past date, why the current prod model was\n"
        "promoted, and what changed between the staging and the prod model.",
    ),
    Entry(
        "ingest",
        _CLI + "pipeline_cmd:ingest",
        "Validate every record against the family's training contract; valid ones become a\n"
        "dataset artifact, invalid ones go to the quarantine with field, value and rule.",
    ),
    Entry(
        "retrain",
        _CLI + "pipeline_cmd:retrain",
        "Record a RetrainRequested: the feature service builds features, train trains and\n"
        "evaluates, the promotion gate and deployment follow. On the embedded default they run "
        "now,\nin this process; with KEEL_INLINE_SERVICES=false the `keel service run` "
        "processes do.",
    ),
    Entry("families", _CLI + "inventory_cmd:families", "Model families with events in the log."),
    Entry(
        "replay",
        _CLI + "audit_cmd:replay",
        "Rebuild every view as of TIME from the log alone (exact: filtered on occurred_at), "
        "into a\nseparate snapshot; the current views are untouched.",
    ),
    Entry(
        "serve",
        _CLI + "pipeline_cmd:serve_cmd",
        "Serve predictions for FAMILY from ENV's current deployment; payloads are validated "
        "against\nthe inference contract; hot-swaps on ModelDeployed. OpenAPI at /docs.",
    ),
    Entry("version", "keel_services.entrypoints.cli.app:version", VERSION_HELP),
    Entry(
        "schemas",
        _CLI + "schemas_cmd:app",
        "Event schemas: the single source of truth in schemas/events/.",
        group=True,
        extras=(Extra("reconcile", _CLI + "pipeline_cmd:reconcile_cmd"),),
    ),
    Entry(
        "artifacts",
        _CLI + "artifacts_cmd:app",
        "Immutable, content-addressed artifacts and their lineage.",
        group=True,
        extras=(Extra("list", _CLI + "inventory_cmd:artifacts_list"),),
    ),
    Entry(
        "audit",
        _CLI + "audit_cmd:app",
        "The audit trail: what happened, when, by whom, and why.",
        group=True,
        extras=(Extra("snapshot", _CLI + "snapshot_cmd:snapshot"),),
    ),
    Entry(
        "keys",
        _CLI + "keys_cmd:app",
        "Signing keys: which identity (a service or a person) may write which events.",
        group=True,
    ),
    Entry(
        "contracts",
        _CLI + "init_cmd:contracts_app",
        "Data contracts: infer them from a sample.",
        group=True,
    ),
    Entry(
        "deploy",
        _CLI + "pipeline_cmd:deploy_app",
        "Deployments: what serves each environment. `keel deploy MODEL --env E --reason R` "
        "deploys a chosen model (its gate checked now; --override deploys one that fails it).",
        group=True,
        extras=(Extra("model", _CLI + "promote_cmd:deploy_model", hidden=True),),
    ),
    Entry(
        "promote",
        _CLI + "promote_cmd:app",
        "Promotion decisions people make: approve or reject a pending promotion, re-run a "
        "gate under the current policy, list what waits for approval.",
        group=True,
    ),
    Entry("models", _CLI + "inventory_cmd:models_app", "Trained models.", group=True),
    Entry("datasets", _CLI + "inventory_cmd:datasets_app", "Ingested datasets.", group=True),
    Entry(
        "deployments",
        _CLI + "inventory_cmd:deployments_app",
        "Deployments per environment.",
        group=True,
    ),
    Entry(
        "topics",
        _CLI + "topics_cmd:app",
        "Kafka topics: declared once, applied idempotently, checked for drift.",
        group=True,
    ),
    Entry(
        "step",
        _CLI + "step_cmd:app",
        "Record steps of pipelines Keel does not run: `keel step run NAME ... -- COMMAND`.",
        group=True,
    ),
    Entry(
        "lineage", _CLI + "lineage_cmd:app", "Lineage for other tools (OpenLineage).", group=True
    ),
    Entry(
        "mlflow",
        _CLI + "mlflow_cmd:app",
        "MLflow's model registry in Keel's trail: `keel mlflow import`; webhooks: `keel service "
        "run mlflow-bridge`.",
        group=True,
    ),
    Entry(
        "service",
        _CLI + "pipeline_cmd:service_app",
        "Run a long-lived service in its own consumer group.",
        group=True,
    ),
)

BY_NAME = {e.name: e for e in ENTRIES}
