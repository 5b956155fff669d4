"""Keel inside the pipelines teams already run: a step records its outputs as artifacts with
their lineage, and outputs of the pipeline's own kinds as the same events the services record.

    with keel.step("train", family="breast_cancer", inputs=[fs_id], params={"C": 1.0},
                   code=train, outputs=["model"]) as step:
        if not step.done:                      # the output IDs are known before the work
            step.output(train(...), kind="model")

or as a decorator (`@keel.step(...)`: the function runs only when its outputs are not stored;
what it returns is the single declared output). The IDs follow Keel's rule: the kind, the
code's digest, the params and the input IDs (`keel.artifacts.ids.ArtifactSpec`), so a rerun with
the same inputs, params and code finds its outputs and skips the work.

Outputs are staged and stored only when the block ends without an exception; an exception is
recorded as TrainingFailed (stage = the step's name, with its reason) and nothing is stored.
Kinds the pipeline knows record their events, so the promotion gate, deployment, `keel serve`
and every audit question treat them as they treat a keel.toml pipeline's:
  feature_set  a feature table ({"columns", "X", "y", "label"}) -> its stats, FeaturesBuilt
  model        a Python object (pickled) or bytes -> ModelTrained
  eval_report  {"model_id", "eval_feature_set_id", "metrics", ...} -> ModelEvaluated (the gate
               of the family's first environment follows, then deployment); the model and the
               held-out feature set default to the step's first inputs of those kinds
  dataset      a CSV / JSON Lines / Parquet file -> ingested exactly as `keel ingest` does
Any other kind is stored and announced (ArtifactRecorded) with its parents.
"""

from __future__ import annotations

import functools
import json
import pickle
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from keel.artifacts.canonical import canonical_lines
from keel.artifacts.codeversion import NoSourceToVersion, code_version
from keel.artifacts.ids import ArtifactSpec, canonical_json
from keel.artifacts.recording import record
from keel.artifacts.store import check_kind
from keel.commands import Commands
from keel.errors import KeelError
from keel.events import envelope
from keel.events import generated as g
from keel.features import FeatureTable, table_stats
from keel.pipeline import Context
from keel.service import failed

SERVICE = "step"  # the identity step events are signed as (keel.signing.DEFAULT_ROLES)
ORDER = ("dataset", "feature_set", "model", "eval_report")  # recorded in this order
Code = str | ModuleType | Callable[..., Any] | None


def code_digest(code: Code, files: Sequence[Path] = ()) -> str:
    """The code version of a step: its module's source (a callable's module, a module, or a
    dotted module name) and/or the bytes of files and directories (for any language)."""
    import hashlib

    try:
        parts = [code_version(code)] if code is not None else []
    except NoSourceToVersion as exc:
        raise KeelError(
            f"cannot digest the step's code: {exc}; pass code_version='<your version>' "
            "to keel.step, or code=<a module saved in a file>",
            hint="a function defined in `python -`, `python -c` or a notebook has no file to "
            "digest: save it in a .py file and pass code=<that module> (or run the script as "
            "`python file.py`), or give code_version= a string you change whenever the code "
            "changes (a git commit, say)",
        ) from None
    for f in sorted(Path(p) for p in files):
        paths = sorted(x for x in f.rglob("*") if x.is_file()) if f.is_dir() else [f]
        for x in paths:
            parts.append(f"{x.name}:{hashlib.sha256(x.read_bytes()).hexdigest()}")
    if not parts:
        raise KeelError(
            "a step needs the code that shapes its outputs",
            hint="pass code=<function or module> (or files with --code for `keel step run`)",
        )
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _code_ref(code: Code) -> str:
    if isinstance(code, str):
        return code
    if isinstance(code, ModuleType):
        return code.__name__
    if code is not None:
        return f"{code.__module__}:{getattr(code, '__qualname__', repr(code))}"
    return "external"


@dataclass
class _Staged:
    kind: str
    spec: ArtifactSpec | None  # None: a dataset (its ID is ingest's, from its content)
    data: Any
    suffix: str = ""


@dataclass
class Step:
    """One run of a step: its declared outputs' IDs, computed before the work."""

    ctx: Context
    commands: Commands  # the application's: the services own the events outputs record
    name: str
    family: str
    inputs: tuple[str, ...]
    params: dict[str, Any]
    code_version: str
    code_ref: str
    at: datetime
    outputs: tuple[str, ...]
    ids: dict[str, str] = field(default_factory=dict)
    stored: dict[str, str] = field(default_factory=dict)  # kind -> ID, after the block
    _staged: list[_Staged] = field(default_factory=list)

    def spec(self, kind: str) -> ArtifactSpec:
        params = {"step": self.name, "family": self.family, "params": self.params}
        return ArtifactSpec(kind, self.code_version, params, list(self.inputs))

    @property
    def done(self) -> bool:
        """Every declared output is stored and announced: the work can be skipped."""
        store = self.ctx.rt.artifacts
        return bool(self.ids) and all(
            store.exists(aid) and not store.unannounced(aid) and self.ctx.read.artifact(aid)
            for aid in self.ids.values()
        )

    def read(self, kind: str) -> bytes:
        """The stored bytes of a declared output (verified), e.g. after `done`."""
        return self.ctx.rt.artifacts.read_bytes(self.ids[kind])

    def output(self, data: Any, kind: str, suffix: str = "") -> str:
        """Stage an output (a path, bytes, a file object, or for the pipeline's kinds a Python
        object); it is stored when the block ends. Returns its ID (a dataset's: after)."""
        if kind == "dataset":
            path = Path(data) if isinstance(data, str | Path) else None
            self._staged.append(
                _Staged(kind, None, data, suffix or (path.suffix if path else ".jsonl"))
            )
            return ""
        spec = self.spec(kind)
        self._staged.append(_Staged(kind, spec, data, suffix))
        return spec.id

    # -- recording -------------------------------------------------------------------------
    def _commit(self) -> None:
        staged = sorted(
            self._staged, key=lambda s: ORDER.index(s.kind) if s.kind in ORDER else len(ORDER)
        )
        for s in staged:
            self.stored[s.kind] = _RECORDERS.get(s.kind, _record_plain)(self, s)

    def _failed(self, exc: BaseException) -> None:
        event = failed(
            self._envelope("TrainingFailed", self.family),
            self.family,
            self.name,
            self.code_ref,
            type(exc).__name__,
            str(exc) or repr(exc),
            self.inputs,
        )
        self.ctx.publish([event])

    def _envelope(self, event_type: str, subject: str) -> g.Envelope:
        return envelope(
            event_type,
            subject=subject,
            service=SERVICE,
            code_version=self.code_version,
            actor=self.ctx.actor,
            correlation_id=self.ctx.correlation_id,
            occurred_at=self.at,
        )

    def _store(self, spec: ArtifactSpec, data: Any) -> str:
        info, _ = record(
            self.ctx.rt.artifacts,
            spec,
            _as_source(data),
            self.ctx.publish,
            service=SERVICE,
            actor=self.ctx.actor,
            correlation_id=self.ctx.correlation_id,
            occurred_at=self.at,
        )
        return info.id


def _as_source(data: Any) -> bytes | Path:
    if isinstance(data, bytes | Path):
        return data
    if isinstance(data, str):
        return Path(data)
    if hasattr(data, "read"):
        return bytes(data.read())
    raise KeelError(
        f"cannot store a {type(data).__name__} as this kind of output",
        hint="give a path, bytes or a binary file object (or a Python object for kind model)",
    )


def _record_plain(step: Step, s: _Staged) -> str:
    assert s.spec is not None
    return step._store(s.spec, s.data)


def _record_dataset(step: Step, s: _Staged) -> str:
    with tempfile.TemporaryDirectory(prefix="keel-step-") as d:
        path = Path(d) / f"{step.name}{s.suffix}"
        if isinstance(s.data, str | Path):
            path = Path(s.data)
        else:
            path.write_bytes(s.data if isinstance(s.data, bytes) else bytes(s.data.read()))
        res = step.commands.ingest_file(step.ctx, step.family, path, step.at, step.name)
    return str(res.dataset_id)


def _record_feature_set(step: Step, s: _Staged) -> str:
    assert s.spec is not None
    table = s.data if isinstance(s.data, FeatureTable) else None
    if table is None:
        doc = s.data if isinstance(s.data, dict) else json.loads(_bytes(s.data))
        table = FeatureTable.from_doc(doc)
    fam = step.ctx.project.families.get(step.family)
    fs = step._store(s.spec, canonical_lines([table.as_doc()]))
    stats_spec = ArtifactSpec("feature_stats", step.code_version, s.spec.params, [fs])
    classes = fam is None or fam.task != "regression"
    stats = step._store(stats_spec, canonical_lines([table_stats(table, classes=classes)]))
    datasets = tuple(sorted(i for i in step.inputs if step.ctx.read.dataset(i)))
    step.ctx.publish(
        [
            step.commands.step_events().features_built(
                envelope=step._envelope("FeaturesBuilt", fs),
                family=step.family,
                dataset_ids=datasets,
                feature_set_id=fs,
                feature_stats_id=stats,
                transform=step.code_ref,
                code_version=step.code_version,
                rows=len(table.rows),
            )
        ]
    )
    return fs


def _record_model(step: Step, s: _Staged) -> str:
    assert s.spec is not None
    data = s.data if isinstance(s.data, bytes | Path | str) or hasattr(s.data, "read") else None
    model = step._store(s.spec, data if data is not None else pickle.dumps(s.data, protocol=5))
    if step.ctx.read.model(model) is None:
        feature_sets = tuple(i for i in step.inputs if step.ctx.read.feature_set(i))
        step.ctx.publish(
            [
                step.commands.step_events().model_trained(
                    envelope=step._envelope("ModelTrained", model),
                    family=step.family,
                    model_id=model,
                    feature_set_ids=feature_sets,
                    trainer=step.code_ref,
                    params={k: canonical_json(v) for k, v in sorted(step.params.items())},
                    code_version=step.code_version,
                )
            ]
        )
    return model


def _record_eval(step: Step, s: _Staged) -> str:
    assert s.spec is not None
    report = s.data if isinstance(s.data, dict) else json.loads(_bytes(s.data))
    # Defaults from the step's inputs, so a program run by `keel step run` only has to write
    # {"metrics": {...}}: the model it evaluated and the held-out feature set it was given.
    read = step.ctx.read
    for key, found in (("model_id", read.model), ("eval_feature_set_id", read.feature_set)):
        if key not in report:
            given = [i for i in step.inputs if found(i) is not None]
            if given:
                report = {**report, key: given[0]}
    missing = {"model_id", "eval_feature_set_id", "metrics"} - set(report)
    if missing:
        raise KeelError(
            f"an eval_report output needs {', '.join(sorted(missing))}",
            hint='give {"model_id": ..., "eval_feature_set_id": ..., "metrics": {...}}',
        )
    model_id = step.stored.get("model") or report["model_id"]
    eval_fs = step.ctx.read.feature_set(report["eval_feature_set_id"])
    if eval_fs is None:
        raise KeelError(
            f"eval_feature_set_id {report['eval_feature_set_id'][:12]} is not a recorded "
            "feature set",
            hint="record the held-out features first (a feature_set output of a step)",
        )
    report = {**report, "model_id": model_id, "eval_dataset_ids": list(eval_fs.dataset_ids)}
    spec = ArtifactSpec(
        "eval_report", step.code_version, s.spec.params, [model_id, eval_fs.feature_set_id]
    )
    rid = step._store(spec, canonical_lines([report]))
    step.ctx.publish(
        [
            step.commands.step_events().model_evaluated(
                envelope=step._envelope("ModelEvaluated", model_id),
                family=step.family,
                model_id=model_id,
                eval_report_id=rid,
                eval_dataset_id=eval_fs.dataset_ids[0] if eval_fs.dataset_ids else "",
                metrics={k: float(v) for k, v in report["metrics"].items()},
            )
        ]
    )
    return rid


def _bytes(data: Any) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str | Path):
        return Path(data).read_bytes()
    return bytes(data.read())


_RECORDERS: dict[str, Callable[[Step, _Staged], str]] = {
    "dataset": _record_dataset,
    "feature_set": _record_feature_set,
    "model": _record_model,
    "eval_report": _record_eval,
}


class step:
    """`with keel.step(...) as s:` or `@keel.step(...)`; see the module's docstring.

    Recording runs the services (a feature_set output is the feature service's FeaturesBuilt),
    so a step needs a client the application equipped with its commands: `client=`, or the
    application's subclass of this class, whose `open_client` opens one (decision 0025)."""

    @staticmethod
    def open_client() -> Any:
        """The client a step opens when none is given: the library's, queries only, so the
        step is refused before any work (keel.commands.no_commands)."""
        from keel.client import Client

        return Client()

    def __init__(
        self,
        name: str,
        *,
        family: str,
        inputs: Sequence[str] = (),
        params: dict[str, Any] | None = None,
        code: Code = None,
        outputs: Sequence[str] = (),
        at: datetime | None = None,
        code_version: str | None = None,
        client: Any = None,
    ) -> None:
        self.name, self.family = name, family
        self.inputs, self.params = tuple(inputs), dict(params or {})
        self.code, self.outputs, self.at = code, tuple(outputs), at
        self.code_version = code_version
        self.client = client
        self._stack: ExitStack | None = None
        self._step: Step | None = None

    @contextmanager
    def _open(self) -> Iterator[Step]:
        # What can be refused without I/O is refused before any work: the outputs' kinds, and
        # the code's version (a step that cannot name its code).
        for kind in self.outputs:
            check_kind(kind)
        version = self.code_version or code_digest(self.code)
        with ExitStack() as stack:
            client = self.client or stack.enter_context(self.open_client())
            ctx = stack.enter_context(client.pipeline())
            ctx.project.family(self.family)  # an unknown family fails before any work
            inputs = tuple(client.resolve(i) for i in self.inputs)
            s = Step(
                ctx,
                client.commands,
                self.name,
                self.family,
                inputs,
                self.params,
                version,
                _code_ref(self.code),
                self.at or datetime.now(UTC),
                self.outputs,
            )
            s.ids = {k: s.spec(k).id for k in self.outputs if k != "dataset"}
            try:
                yield s
            except BaseException as exc:
                s._staged.clear()  # nothing half-stored
                s._failed(exc)
                raise
            s._commit()

    def __enter__(self) -> Step:
        self._stack = ExitStack()
        self._step = self._stack.enter_context(self._open())
        return self._step

    def __exit__(self, *exc: Any) -> bool | None:
        assert self._stack is not None
        return self._stack.__exit__(*exc)

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., dict[str, str]]:
        """As a decorator: the function runs only when the outputs are not stored; what it
        returns is the output when one kind is declared. Returns the outputs' IDs."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> dict[str, str]:
            code = self.code if self.code is not None else fn
            again = type(self)(
                self.name,
                family=self.family,
                inputs=self.inputs,
                params=self.params,
                code=code,
                outputs=self.outputs,
                at=self.at,
                code_version=self.code_version,
                client=self.client,
            )
            with again as s:
                if s.done:
                    return dict(s.ids)
                result = fn(s, *args, **kwargs)
                if result is not None and len(self.outputs) == 1 and not s._staged:
                    s.output(result, kind=self.outputs[0])
            return {**s.ids, **s.stored}

        return run


__all__ = ["Step", "code_digest", "step"]
