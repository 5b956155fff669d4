"""Keel from Python: the questions and commands of the CLI, with typed results.

    import keel

    with keel.Client() as k:                      # KEEL_HOME, KEEL_BUS, ... as the CLI reads them
        now = k.serving("breast_cancer", "prod")
        print(now.serving.model_id if now.serving else now.message)
        for m in k.models("breast_cancer", limit=5):
            print(m.model_id[:12], m.metrics)

Queries read the views, brought up to the log's end first (only new events are folded);
commands record events and let the services' handlers do what follows, as `keel` does. The
library answers queries by itself; commands run the services, which the application passes in
(`commands=`, keel.commands.Commands): its own Client does that (decision 0025). The CLI
and the audit HTTP API answer through the same read surface (`keel.audit.reads.Reads`), so
the three give the same answers; results are Pydantic models whose
`model_dump(mode="json")` is exactly the CLI's `--json` document.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from pydantic import BaseModel, ConfigDict

from keel.audit.reads import Reads
from keel.bootstrap import Runtime, bootstrap
from keel.commands import no_commands
from keel.errors import KeelError
from keel.settings import Settings
from keel.timeparse import business_time, parse_time
from keel.views.port import ViewStore

if TYPE_CHECKING:
    # Queries (`keel audit serving`, `keel models list`) import none of these: the pipeline
    # brings numpy and the services' handlers, the report its renderer. Commands import them.
    from keel.commands import Commands
    from keel.pipeline import Context
    from keel.project import Project
    from keel.report.build import Report

When = datetime | str | None


class _Doc(BaseModel):
    """An answer: the documented fields typed; anything else the views carry kept as is."""

    model_config = ConfigDict(extra="allow", frozen=True)


class Deployment(_Doc):
    event_id: str
    family: str
    env: str
    model_id: str
    kind: str
    since: str
    until: str | None = None
    reason: str | None = None
    actor: str | None = None
    eval_report_id: str | None = None
    promotion_event_id: str | None = None
    recorded_at: str | None = None
    backdated: bool = False


class Serving(_Doc):
    family: str
    env: str
    at: str
    as_of: str | None = None
    serving: Deployment | None = None
    message: str | None = None


class Why(Serving):
    steps: list[dict[str, Any]] = []


class Decision(_Doc):
    decision: str  # promoted, rejected, pending, approved, declined
    family: str
    model_id: str
    env: str
    at: str
    actor: str
    event_id: str
    reason: str
    trigger: str | None = None
    note: str | None = None
    policy_version: str | None = None
    approved_by: list[str] = []


class WhyPromoted(_Doc):
    promotion: Decision
    env: str | None = None
    over: str | None = None
    comparison: list[dict[str, Any]] = []
    rejections: list[Decision] = []
    reviews: list[Decision] = []


class NotPromoted(_Doc):
    env: str
    reason: str
    rejections: list[Decision] = []


class WhyPromotedEverywhere(_Doc):
    """Every environment a model was promoted to, one answer each (and where it was not)."""

    model_id: str
    environments: list[WhyPromoted]
    not_promoted: list[NotPromoted] = []


class Diff(_Doc):
    a: str
    b: str


class ModelInfo(_Doc):
    model_id: str
    family: str | None = None
    trained_at: str | None = None
    trainer: str | None = None
    metrics: dict[str, float] = {}


class DatasetInfo(_Doc):
    id: str
    family: str
    at: str
    accepted: int
    quarantined: int
    period: str | None = None


class ArtifactInfo(_Doc):
    id: str
    kind: str
    parents: list[str]
    recorded_at: str


class LineageNode(_Doc):
    id: str
    kind: str
    depth: int  # < 0: an ancestor that many hops up; > 0: a descendant
    via: str | None = None


class VerifyReport(_Doc):
    ok: bool
    events: int
    signed: int
    problems: list[dict[str, Any]]


class Ingested(_Doc):
    dataset_id: str
    raw_id: str
    quarantine_batch_id: str | None = None
    records_in: int
    accepted: int
    quarantined: int


DECISION_TYPE = {
    "promoted": "ModelPromoted",
    "rejected": "PromotionRejected",
    "pending": "PromotionPending",
}


class Retrained(_Doc):
    request_id: str  # the RetrainRequested event
    model_id: str | None  # None: requested; the services record the model when they are done
    eval_report_id: str | None
    metrics: dict[str, float]
    decisions: list[dict[str, Any]]  # per environment: the decision's type and reason


class Outcome(_Doc):
    """Where a model stands in an environment after a command."""

    family: str
    model_id: str
    env: str
    serving: str | None = None
    deployed: bool = False
    pending: dict[str, Any] | None = None


def _time(value: When, default_now: bool = True) -> datetime | None:
    if value is None:
        return datetime.now(UTC) if default_now else None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_time(value)[0]


class Client:
    """Opened from the same settings as the CLI (KEEL_HOME, KEEL_BUS, KEEL_VIEWS, KEEL_PROJECT,
    keys); pass `settings` to choose. Close it (or use `with`) to release the log and views."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        views: ViewStore | None = None,
        commands: Commands | None = None,
    ):
        self.settings = settings or Settings()
        self._commands = commands  # None: queries only (keel.commands.no_commands)
        self._rt: Runtime | None = None
        self._views = views  # answer from these instead (the HTTP API's kept-fresh views)
        self._fresh: Any = None  # FreshViews over this client's runtime, made on first use

    # -- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def over(
        cls, rt: Runtime, views: ViewStore | None = None, commands: Commands | None = None
    ) -> Client:
        """A client on an open runtime (the HTTP API's), answering from `views` if given."""
        client = cls(rt.settings, views=views, commands=commands)
        client._rt = rt
        return client

    @property
    def commands(self) -> Commands:
        """What records commands (the application's); a queries-only client refuses."""
        if self._commands is None:
            raise no_commands()
        return self._commands

    @property
    def rt(self) -> Runtime:
        if self._rt is None:
            self._rt = bootstrap(self.settings, create=False)
        return self._rt

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()
            self._rt = None
            self._fresh = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fresh_views(self) -> ViewStore:
        """The views at the log's end (the HTTP API keeps its own): new events are folded
        first, and only when the log moved since this client last looked (a command asking two
        questions folds once)."""
        if self._views is not None:
            return self._views
        if self._fresh is None:
            from keel.audit.anchors import default_witness
            from keel.audit.freshness import FreshViews

            rt = self.rt
            self._fresh = FreshViews(
                rt.log,
                rt.views,
                rt.codec,
                rt.checkpoint_signer,
                rt.trust,
                witness=default_witness(rt),
            )
        self._fresh.check()
        return self.rt.views

    def reads(self) -> Reads:
        """The one read surface (keel.audit.reads) over the views at the log's end."""
        return Reads(self.fresh_views())

    def resolve(self, ref: str) -> str:
        """A full artifact ID from an ID or a unique prefix (>= 8 hex characters)."""
        return self.rt.artifacts.resolve(ref)

    # -- the audit questions ------------------------------------------------------------------
    def serving(self, family: str, env: str, at: When = None, as_of: When = None) -> Serving:
        doc = self.reads().serving(family, env, _need(at), _time(as_of, False))
        return Serving.model_validate(doc)

    def why(self, family: str, env: str, at: When = None, as_of: When = None) -> Why:
        return Why.model_validate(self.reads().why(family, env, _need(at), _time(as_of, False)))

    @overload
    def why_promoted(
        self, model: str, env: str, over: str | None = None, as_of: When = None
    ) -> WhyPromoted: ...

    @overload
    def why_promoted(
        self, model: str, env: None = None, over: str | None = None, as_of: When = None
    ) -> WhyPromotedEverywhere: ...

    def why_promoted(
        self, model: str, env: str | None = None, over: str | None = None, as_of: When = None
    ) -> WhyPromoted | WhyPromotedEverywhere:
        """Why MODEL was promoted to `env`; without `env`, to every environment it reached."""
        reads = self.reads()
        other = self.resolve(over) if over else None
        doc = reads.why_promoted(self.resolve(model), env, other, _time(as_of, False))
        if env is None:
            return WhyPromotedEverywhere.model_validate(doc)
        return WhyPromoted.model_validate(doc)

    def diff(self, a: str, b: str, top: int = 5, as_of: When = None) -> Diff:
        reads = self.reads()
        read = lambda aid: json.loads(self.rt.artifacts.read_bytes(aid))  # noqa: E731
        ida, idb = self.resolve(a), self.resolve(b)
        return Diff.model_validate(reads.diff(ida, idb, read, top, _time(as_of, False)))

    def history(
        self, family: str, offset: int = 0, limit: int = 50, as_of: When = None
    ) -> list[Decision]:
        rows = self.reads().registry_history(family, offset, limit, _time(as_of, False))
        return [Decision.model_validate(d) for d in rows]

    def trust_reset(self) -> dict[str, Any] | None:
        """The newest `keel audit reset-trust` (a deliberate restore the admin declared), with
        the line every answer after it shows; None if trust was never reset."""
        return self.reads().trust_reset()

    def skew(self, family: str, env: str, at: When = None) -> dict[str, Any]:
        """Training/serving skew of what ENV's serving process saw in its last window recorded
        by T, against the serving model's training features (per feature PSI and the test its
        kind calls for, keel.skew; the family's thresholds). A drift beyond them is recorded
        (DriftDetected) once per window; a window too small to judge says so in `note`."""
        from keel.skew import MIN_VALUES, compare

        reads = self.reads()
        when = _need(at) if at is not None else datetime.now(UTC)
        fam = self.project().family(family)
        window = reads.serving_window(family, env, when)
        if window is None:
            raise KeelError(
                f"no serving statistics recorded for {family}/{env} by {when.isoformat()}",
                hint=f"`keel serve --family {family} --env {env}` records them every "
                f"{fam.skew.window_seconds:g} s while it gets requests",
            )
        model = reads.model_doc(window["model_id"])
        fs_ids = model.get("feature_set_ids") or []
        if not fs_ids:
            raise KeelError(
                f"model {window['model_id'][:12]} has no training feature set to compare with",
                hint="its ModelTrained names none; `keel audit why` shows what it was built from",
            )
        fs = reads.feature_set_doc(fs_ids[0])
        read = self.rt.artifacts.read_bytes
        training_stats = json.loads(read(fs["stats_id"]).splitlines()[0])
        table = json.loads(read(fs_ids[0]).splitlines()[0])
        columns = list(zip(*table["X"], strict=True)) if table["X"] else []
        values = {
            c: [float(v) for v in col if v is not None]
            for c, col in zip(table["columns"], columns, strict=True)
        }
        drifts = compare(training_stats, values, window["stats"], fam.skew.psi, fam.skew.ks_pvalue)
        drifting = [d for d in drifts if d.drifting]
        recorded = None
        if drifting:
            recorded = self._record_drift(window, drifting, fam.skew.psi, fam.skew.ks_pvalue)
        note = None
        if drifts and all(d.note for d in drifts):  # nothing judged: say so, not "no drift"
            note = (
                f"too few requests to judge: {window['requests']} of {MIN_VALUES}; a later "
                f"window with more traffic will be judged, or set a longer "
                f"[families.{family}.skew] window_seconds"
            )
        return {
            "family": family,
            "env": env,
            "model_id": window["model_id"],
            "window": {
                k: window[k] for k in ("event_id", "window_start", "window_end", "requests")
            },
            "thresholds": {"psi": fam.skew.psi, "ks_pvalue": fam.skew.ks_pvalue},
            "features": [d.__dict__ for d in drifts],
            "drifting": [d.feature for d in drifting],
            "drift_event_id": recorded,
            "note": note,
        }

    def _record_drift(
        self, window: dict[str, Any], drifting: list[Any], psi: float, ks_pvalue: float
    ) -> str:
        with self.pipeline() as ctx:
            return self.commands.record_drift(ctx, window, drifting, psi, ks_pvalue)

    def project(self) -> Project:
        """The project (keel.toml) this client's settings name."""
        from keel.project import load_project

        return load_project(self.settings.project)

    def lineage(self, artifact: str, direction: str = "both", depth: int = 10) -> list[LineageNode]:
        """Ancestors (negative depth) and descendants (positive), breadth first."""
        if direction not in ("up", "down", "both"):
            raise KeelError(f"direction {direction!r} is not up, down or both")
        root = self.rt.artifacts.info(artifact)
        return [
            LineageNode(id=n.id, kind=n.kind, depth=n.depth, via=n.via)
            for n in self.rt.artifacts.lineage(root.id, direction, depth)
        ]

    def verify(
        self, checkpoints: list[str | Path] | None = None, skip: list[str] | None = None
    ) -> VerifyReport:
        """Signatures, trees against checkpoints (the log's and witnesses' files), artifacts,
        views against a fresh fold: `ok` and every problem with what to do."""
        from keel.audit.verify_run import run_verify

        self.fresh_views()
        paths = [Path(c) for c in checkpoints or []]
        return VerifyReport.model_validate(run_verify(self.rt, paths, skip or []))

    def report(
        self,
        family: str,
        start: When,
        end: When,
        env: str | None = None,
        checkpoints: list[str | Path] | None = None,
        skip: list[str] | None = None,
        identity: str | None = None,
    ) -> Report:
        """The review pack of [start, end) (business time): serving timeline, decisions with
        gates and margins, data and quarantine, contracts and reconciliations, model diffs,
        charts; verified (as `verify`) with an inclusion proof per listed event, and signed by
        `identity` (default: KEEL_IDENTITY, else "audit"), which must have the report-signing
        role (keel.toml `sign_reports`). `.html`, `.pdf()`, `.write(path)`."""
        from keel.report.build import build

        views = self.fresh_views()
        project = self.project()
        # an MLflow family's environments are its aliases: any one named is taken
        known = [env] if env and family not in project.families else project.environments(family)
        if env is not None and env not in known:
            raise KeelError(
                f"{family} has no environment {env!r}", hint=f"environments: {', '.join(known)}"
            )
        envs = [env] if env else known
        return build(
            self.rt,
            views,
            family,
            envs,
            _need(start),
            _need(end),
            identity or self.settings.identity or "audit",
            [Path(c) for c in checkpoints or []],
            skip or [],
        )

    # -- what exists --------------------------------------------------------------------------
    def families(self) -> list[str]:
        return self.reads().families()

    def family(self, name: str | None) -> str:
        """`name` checked against the families with events; None: the only one there is."""
        known = self.families()
        if name:
            if name not in known:
                raise KeelError(
                    f"no events for family {name!r}", hint=f"known: {', '.join(known) or 'none'}"
                )
            return name
        if len(known) == 1:
            return known[0]
        raise KeelError("give --family", hint=f"known families: {', '.join(known) or 'none yet'}")

    def models(
        self, family: str, env: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[ModelInfo]:
        rows = self.reads().models(family, env, offset, limit)
        return [ModelInfo.model_validate(r) for r in rows]

    def datasets(self, family: str, offset: int = 0, limit: int = 50) -> list[DatasetInfo]:
        rows = self.reads().datasets(family, offset, limit)
        return [DatasetInfo.model_validate(r) for r in rows]

    def deployments(
        self, family: str, env: str, offset: int = 0, limit: int = 50
    ) -> list[Deployment]:
        rows = self.reads().deployments(family, env, offset, limit)
        return [Deployment.model_validate(r) for r in rows]

    def artifacts(
        self, kind: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[ArtifactInfo]:
        rows = self.reads().artifacts(kind, offset, limit)
        return [ArtifactInfo.model_validate(r) for r in rows]

    # -- commands -----------------------------------------------------------------------------
    @contextmanager
    def pipeline(self) -> Iterator[Context]:
        """A pipeline context on this client's runtime and project (what `keel` commands run
        in): events recorded through it go round the services' handlers."""
        commands = self.commands  # refused before KEEL_HOME is made
        project = self.project()
        if self._rt is None:  # a write: KEEL_HOME is made if missing, as `keel ingest` does
            self._rt = bootstrap(self.settings, create=True)
        bus = commands.bus(self.rt, project, actor=self.settings.who())
        bus.ctx.correlation_id = str(uuid.uuid4())
        yield bus.ctx
        bus.close()

    def ingest(
        self, path: str | Path, family: str, at: When = None, period: str | None = None
    ) -> Ingested:
        with self.pipeline() as ctx:
            ctx.project.family(family)
            res = self.commands.ingest_file(ctx, family, Path(path), _business(at), period)
        return Ingested.model_validate(res.__dict__)

    def retrain(
        self,
        family: str,
        eval_dataset: str,
        datasets: list[str] | None = None,
        at: When = None,
        reason: str | None = None,
    ) -> Retrained:
        """Records a RetrainRequested; the feature and train services build features, train
        and evaluate, and the gate and deployment follow. On the embedded default (services
        inline) returns the model, its eval and the decisions it led to; where the services run
        as their own processes, returns the request (model_id None) at once."""
        with self.pipeline() as ctx:
            eval_id = self.resolve(eval_dataset)
            ids = [self.resolve(d) for d in datasets or []] or sorted(
                d for d in ctx.read.datasets_of(family) if d != eval_id
            )
            if not ids:
                raise KeelError(
                    f"no datasets to train {family} on", hint="ingest some with `keel ingest`"
                )
            done = self.commands.request_retrain(ctx, family, ids, eval_id, _business(at), reason)
        decisions = [
            {"env": d["env"], "decision": DECISION_TYPE[d["decision"]], "reason": d["reason"]}
            for d in done.decisions
        ]
        return Retrained(
            request_id=done.request_id,
            model_id=done.model.model_id if done.model else None,
            eval_report_id=done.evaluation.eval_report_id if done.evaluation else None,
            metrics=dict(done.evaluation.metrics) if done.evaluation else {},
            decisions=decisions,
        )

    def _model(self, ctx: Context, model: str, family: str | None) -> tuple[str, str]:
        model_id = self.resolve(model)
        trained = ctx.read.model(model_id)
        if trained is None:
            raise KeelError(
                f"{model_id[:12]} is not a trained model", hint="see `keel models list`"
            )
        if family is not None and family != trained.family:
            raise KeelError(f"{model_id[:12]} belongs to family {trained.family!r}, not {family!r}")
        return model_id, trained.family

    def approve(self, model: str, env: str, reason: str, at: When = None) -> Outcome:
        return self._review("approved", model, env, reason, at)

    def reject(self, model: str, env: str, reason: str, at: When = None) -> Outcome:
        return self._review("rejected", model, env, reason, at)

    def _review(self, verdict: str, model: str, env: str, reason: str, at: When) -> Outcome:
        with self.pipeline() as ctx:
            model_id, family = self._model(ctx, model, None)
            event = self.commands.review(ctx, family, model_id, env, verdict, reason, _business(at))
            out = outcome(ctx, family, model_id, env)
        return Outcome.model_validate(
            {**out, "event_id": event.envelope.event_id, "actor": event.envelope.actor}
        )

    def evaluate(self, model: str, env: str, at: When = None) -> Outcome:
        """Re-run ENV's gate under the current policy; the decision is recorded."""
        with self.pipeline() as ctx:
            model_id, family = self._model(ctx, model, None)
            (decision,) = self.commands.evaluate(ctx, family, model_id, env, _business(at))
            out = outcome(ctx, family, model_id, env)
        return Outcome.model_validate(
            {
                **out,
                "decision": decision.EVENT_TYPE,
                "event_id": decision.envelope.event_id,
                "policy_version": getattr(decision, "policy_version", None),
                "reason": getattr(decision, "reason", None),
            }
        )

    def deploy(
        self, model: str, env: str, reason: str, override: bool = False, at: When = None
    ) -> Outcome:
        from keel.events import generated as g

        with self.pipeline() as ctx:
            model_id, family = self._model(ctx, model, None)
            event = self.commands.deploy_chosen(
                ctx, family, model_id, env, reason, _business(at), override
            )
            out = outcome(ctx, family, model_id, env)
        is_override = isinstance(event, g.ModelDeployed) and event.kind == "override"
        return Outcome.model_validate(
            {
                **out,
                "event_type": event.EVENT_TYPE,
                "event_id": event.envelope.event_id,
                "override": is_override,
            }
        )

    def rollback(
        self,
        family: str,
        env: str,
        to: str | None = None,
        reason: str | None = None,
        at: When = None,
    ) -> Outcome:
        with self.pipeline() as ctx:
            event = self.commands.rollback(ctx, family, env, to, _business(at), reason)
            out = outcome(ctx, family, event.model_id, env)
        return Outcome.model_validate(
            {
                **out,
                "event_id": event.envelope.event_id,
                "previous_model_id": event.previous_model_id,
            }
        )

    def pending(self, family: str, env: str | None = None) -> list[dict[str, Any]]:
        """Promotions waiting for approval, oldest first, with the approvals so far."""
        read = self.reads()  # a query: no commands needed
        envs = [env] if env else self.project().family(family).environments
        return [
            {
                "env": p.env,
                "model_id": p.model_id,
                "event_id": p.envelope.event_id,
                "at": p.envelope.occurred_at.isoformat(),
                "triggered_by": p.envelope.actor,
                "approvals": read.approvers(p.envelope.event_id),
                "approvals_required": p.approvals_required,
                "reason": p.reason,
            }
            for e in envs
            for p in read.open_pending(family, e)
        ]


def outcome(ctx: Context, family: str, model_id: str, env: str) -> dict[str, Any]:
    """Where a model stands in an environment after a command: serving, pending (with the
    approvals so far) or neither."""
    current = ctx.read.serving_now(family, env)
    doc: dict[str, Any] = {
        "family": family,
        "model_id": model_id,
        "env": env,
        "serving": current.model_id if current else None,
        "deployed": bool(current and current.model_id == model_id),
        "pending": None,
    }
    waiting = [p for p in ctx.read.open_pending(family, env) if p.model_id == model_id]
    if waiting:
        p = waiting[-1]
        doc["pending"] = {
            "event_id": p.envelope.event_id,
            "approvals": ctx.read.approvers(p.envelope.event_id),
            "approvals_required": p.approvals_required,
            "excluded_approvers": list(p.excluded_approvers),
        }
    return doc


def _need(at: When) -> datetime:
    when = _time(at)
    assert when is not None
    return when


def _business(at: When) -> datetime:
    """A business time for a command: now, or the given one (refused beyond the clock-skew
    allowance into the future, as the CLI refuses it)."""
    if isinstance(at, datetime):
        at = at.isoformat()
    return business_time(at)[0]
