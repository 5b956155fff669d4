"""A retraining pipeline's history for the fold benches (`--mix pipeline`), in the proportions
a real pipeline writes.

`keel demo` (one family, two environments, six retrains) wrote per retrain: two raw batches
ingested into datasets, about one batch in three with quarantined records, two feature sets
with their stats, ~2.7 schema reconciliations, a retrain request, a model trained and
evaluated, and one decision + manifest + deployment per environment (one prod promotion in
six rejected by its gates). The demo never needs a reviewer or serves traffic; a real
pipeline's prod does both, so prod's promotions here wait for two reviews (one pending in ten
declined by its first reviewer) and every serving environment records two stats windows.

One cycle is one retrain of one family; cycles go round `families` families and three
environments (dev, staging, prod), an hour of business time apart, each step of a cycle a
second after the one before. ~36 events a cycle; the same cycle number gives the same events
(event IDs derived from it), so a run is reproducible.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from keel.events import envelope
from keel.events import generated as g

T0 = datetime(2024, 1, 1, tzinfo=UTC)
ENVS = ("dev", "staging", "prod")
_NS = uuid.UUID("6a1d2c9e-0b7e-4c55-9d0f-5f1e2a3b4c5d")


def _hex(*parts: object) -> str:
    """A 40-hex artifact ID, stable for its parts (artifact IDs are content digests)."""
    return uuid.uuid5(_NS, "/".join(map(str, parts))).hex + "0" * 8


class _Cycle:
    """The events of one cycle, each envelope a second after the one before."""

    def __init__(self, cycle: int, family: str) -> None:
        self.cycle, self.family = cycle, family
        self.at = T0 + timedelta(hours=cycle)
        self.out: list[Any] = []
        self.correlation = str(uuid.uuid5(_NS, f"run/{cycle}"))

    def env(
        self, kind: str, subject: str, actor: str = "pipeline", cause: str | None = None
    ) -> Any:
        self.at += timedelta(seconds=1)
        return envelope(
            kind,
            subject=subject,
            service="t",
            code_version="c" * 40,
            actor=actor,
            correlation_id=self.correlation,
            occurred_at=self.at,
            causation_id=cause,
            event_id=str(uuid.uuid5(_NS, f"{self.cycle}/{len(self.out)}")),
        )

    def add(self, event: Any) -> Any:
        self.out.append(event)
        return event

    def artifact(self, kind: str, parents: tuple[str, ...], size: int, **params: Any) -> str:
        aid = _hex(self.cycle, kind, len(self.out))
        self.add(
            g.ArtifactRecorded(
                envelope=self.env("ArtifactRecorded", aid),
                artifact_id=aid,
                kind=kind,
                parents=parents,
                code_version="c" * 40,
                params_json=json.dumps({"family": self.family, **params}, sort_keys=True),
                digest=_hex("digest", aid),
                size=size,
                location=f"objects/{aid[:2]}/{aid[2:]}",
            )
        )
        return aid


def _gates(accuracy: float, floor: float, passed: bool) -> tuple[g.GateResult, ...]:
    return (
        g.GateResult(
            name="accuracy_threshold",
            metric="accuracy",
            op=">=",
            threshold=floor,
            value=accuracy,
            passed=True,
            margin=accuracy - floor,
        ),
        g.GateResult(
            name="beats_incumbent",
            metric="accuracy",
            op=">=",
            threshold=0.0,
            value=0.01 if passed else -0.01,
            passed=passed,
            margin=0.01 if passed else -0.01,
        ),
    )


def cycle_events(cycle: int, families: int = 50) -> list[Any]:
    """Retrain `cycle` of family `cycle % families`: ingest, features, training, evaluation,
    a decision and a deployment per environment, serving stats."""
    family = f"family{cycle % families:02d}"
    c = _Cycle(cycle, family)
    previous = _hex(cycle - families, "model", 0) if cycle >= families else None
    # ingest: two raw batches into datasets; one batch in three has quarantined records
    datasets = []
    for b in range(2):
        raw = c.artifact("raw_batch", (), 8_400)
        ds = c.artifact("dataset", (raw,), 28_500, contract="ba2aa51447afe2af")
        quarantined = 2 if b == 0 and cycle % 3 == 0 else 0
        qbatch = None
        if quarantined:
            qbatch = c.artifact("quarantine_batch", (raw,), 4_000)
            for r in range(quarantined):
                c.add(
                    g.RecordQuarantined(
                        envelope=c.env("RecordQuarantined", family),
                        family=family,
                        source_name=f"batch-{cycle}-{b}.csv",
                        record_index=r,
                        field="mean_radius",
                        value="-1",
                        rule="range",
                        reason="below the contract's minimum",
                        quarantine_batch_id=qbatch,
                    )
                )
        c.add(
            g.DatasetIngested(
                envelope=c.env("DatasetIngested", ds),
                family=family,
                dataset_id=ds,
                source_name=f"batch-{cycle}-{b}.csv",
                source_digest=_hex("source", raw),
                contract_fingerprint="ba2aa51447afe2af",
                records_in=120 + quarantined,
                accepted=120,
                quarantined=quarantined,
                quarantine_batch_id=qbatch,
                period=f"{2024 + cycle // 8760}-{cycle % 12 + 1:02d}",
            )
        )
        datasets.append(ds)
    # features: a feature set and its stats per dataset
    feature_sets = []
    for ds in datasets:
        fs = c.artifact("feature_set", (ds,), 36_000, transform="keel.transforms.standard")
        stats = c.artifact("feature_stats", (fs,), 7_900, transform="keel.transforms.standard")
        c.add(
            g.FeaturesBuilt(
                envelope=c.env("FeaturesBuilt", fs),
                family=family,
                dataset_ids=(ds,),
                feature_set_id=fs,
                feature_stats_id=stats,
                transform="keel.transforms.standard",
                code_version="c" * 40,
                rows=120,
            )
        )
        feature_sets.append(fs)
    for stage in ("features", "training", "serving")[: 2 + (cycle % 3 != 0)]:
        c.add(
            g.SchemaReconciled(
                envelope=c.env("SchemaReconciled", family),
                family=family,
                training_fingerprint="ba2aa51447afe2af",
                inference_fingerprint="ba2aa51447afe2af",
                stage=stage,
            )
        )
    request = c.add(
        g.RetrainRequested(
            envelope=c.env("RetrainRequested", family),
            family=family,
            dataset_ids=tuple(datasets),
            eval_dataset_id=datasets[1],
            reason="new data",
        )
    )
    # training and evaluation
    model = _hex(cycle, "model", 0)
    c.add(
        g.ArtifactRecorded(
            envelope=c.env("ArtifactRecorded", model, cause=request.envelope.event_id),
            artifact_id=model,
            kind="model",
            parents=(feature_sets[0],),
            code_version="c" * 40,
            params_json=json.dumps({"family": family, "params": {"C": "1.0"}}),
            digest=_hex("digest", model),
            size=2_091,
            location=f"objects/{model[:2]}/{model[2:]}",
        )
    )
    c.add(
        g.ModelTrained(
            envelope=c.env("ModelTrained", model, cause=request.envelope.event_id),
            family=family,
            model_id=model,
            feature_set_ids=(feature_sets[0],),
            trainer="sklearn.linear_model.LogisticRegression",
            params={"C": "1.0", "max_iter": "200"},
            code_version="c" * 40,
        )
    )
    report = c.artifact("eval_report", (model, feature_sets[1]), 1_150)
    accuracy = 0.9 + (cycle % 97) / 1000
    metrics = {"accuracy": accuracy, "brier": 0.03, "roc_auc": 0.98}
    c.add(
        g.ModelEvaluated(
            envelope=c.env("ModelEvaluated", model),
            family=family,
            model_id=model,
            eval_report_id=report,
            eval_dataset_id=datasets[1],
            metrics=metrics,
        )
    )
    # a decision per environment; prod's promotions wait for two reviews
    for env in ENVS:
        _decide(c, env, model, report, metrics, previous)
    return c.out


def _decide(
    c: _Cycle,
    env: str,
    model: str,
    report: str,
    metrics: dict[str, float],
    previous: str | None,
) -> None:
    family, cycle = c.family, c.cycle
    subject = f"{family}/{env}"
    common: dict[str, Any] = {
        "family": family,
        "model_id": model,
        "env": env,
        "eval_report_id": report,
        "metrics": metrics,
        "incumbent_model_id": previous,
        "incumbent_metrics": {"accuracy": 0.9} if previous else {},
        "policy_version": "8697717669b8",
    }
    rejected = (env == "prod" and cycle % 6 == 5) or (env == "staging" and cycle % 12 == 7)
    if rejected:
        c.add(
            g.PromotionRejected(
                envelope=c.env("PromotionRejected", subject),
                gates=_gates(metrics["accuracy"], 0.9, False),
                failed_gates=("beats_incumbent",),
                reason="rejected: does not beat the incumbent",
                **common,
            )
        )
        return
    gates = _gates(metrics["accuracy"], 0.9, True)
    approvers: tuple[str, ...] = ()
    pending_id = None
    if env == "prod":
        pending = c.add(
            g.PromotionPending(
                envelope=c.env("PromotionPending", subject),
                gates=gates,
                reason="gates passed; prod needs two approvals",
                approvals_required=2,
                **common,
            )
        )
        pending_id = pending.envelope.event_id
        declined = cycle % 10 == 3
        for reviewer in ("alice", "bob")[: 1 if declined else 2]:
            c.add(
                g.PromotionReviewed(
                    envelope=c.env("PromotionReviewed", subject, actor=reviewer, cause=pending_id),
                    family=family,
                    model_id=model,
                    env=env,
                    pending_event_id=pending_id,
                    verdict="rejected" if declined else "approved",
                    reason="looks right" if not declined else "drift in the eval set",
                )
            )
        if declined:
            return
        approvers = ("alice", "bob")
    promoted = c.add(
        g.ModelPromoted(
            envelope=c.env("ModelPromoted", subject, cause=pending_id),
            gates=gates,
            reason="promoted: gates passed",
            approved_by=approvers,
            pending_event_id=pending_id,
            **common,
        )
    )
    manifest = c.artifact("deployment_manifest", (model,), 350, env=env)
    c.add(
        g.ModelDeployed(
            envelope=c.env("ModelDeployed", subject, cause=promoted.envelope.event_id),
            family=family,
            env=env,
            model_id=model,
            manifest_id=manifest,
            eval_report_id=report,
            promotion_event_id=promoted.envelope.event_id,
            previous_model_id=previous,
            kind="promotion",
        )
    )
    for window in range(2):
        start = c.at + timedelta(minutes=20 * window)
        c.add(
            g.ServingStatsRecorded(
                envelope=c.env("ServingStatsRecorded", subject),
                family=family,
                env=env,
                model_id=model,
                window_start=start.isoformat(),
                window_end=(start + timedelta(minutes=20)).isoformat(),
                requests=1_000 + cycle % 100,
                stats_json=json.dumps(
                    {"mean_radius": {"count": 1000, "mean": 14.1, "std": 3.5, "nulls": 0}}
                ),
            )
        )


def batches(n: int, families: int = 50, size: int = 10_000) -> Iterator[list[Any]]:
    """n events of the pipeline's history (the last cycle cut short), about `size` a batch."""
    cycle, left = 0, n
    while left > 0:
        batch: list[Any] = []
        while len(batch) < min(size, left):
            batch += cycle_events(cycle, families)
            cycle += 1
        batch = batch[:left]
        left -= len(batch)
        yield batch
