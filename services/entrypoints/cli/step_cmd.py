"""`keel step run NAME ... -- COMMAND ARGS`: any program as a Keel step (any language).

The step's code version is the digest of the command line and of the code it names (--code
files or directories); with the params and the input IDs it gives the outputs' IDs before
anything runs. When they are all stored the command is skipped and its outputs are restored at
their --output paths from the store (verified against their digests, so the next command of
the pipeline finds them as if it had run); otherwise it runs with the
inputs materialised as files (their paths in KEEL_INPUTS, one per line, and KEEL_INPUT_0..N;
their IDs in KEEL_INPUT_IDS),
and every --output PATH:KIND it wrote is stored with its lineage (the pipeline's own kinds
record their events, as `keel.step` does). A non-zero exit is recorded as TrainingFailed with
the exit status and the tail of stderr; nothing it wrote is stored.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import typer

from keel.errors import KeelError
from keel.timeparse import business_time
from keel_services.entrypoints.cli.common import (
    console,
    err_console,
    handled,
    parse_params,
    print_json,
)

app = typer.Typer(
    help="Record steps of pipelines Keel does not run: `keel step run NAME ... -- COMMAND`.",
    no_args_is_help=True,
)
TAIL = 2000  # characters of stderr kept in the record of a failed run


class CommandFailed(KeelError):
    pass


def _outputs(items: list[str]) -> list[tuple[Path, str]]:
    out = []
    for item in items:
        path, sep, kind = item.rpartition(":")
        if not sep or not path or not kind:
            raise KeelError(
                f"--output {item!r} is not PATH:KIND",
                hint="e.g. --output model.pkl:model --output report.json:eval_report",
            )
        out.append((Path(path), kind))
    return out


@app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@handled
def run(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="the step's name (recorded; part of its outputs' IDs)"),
    family: str = typer.Option(..., "--family", help="model family declared in keel.toml"),
    inputs: list[str] = typer.Option([], "--input", help="input artifact ID or prefix"),
    params: list[str] = typer.Option([], "--param", help="K=V (V parsed as JSON when it can)"),
    outputs: list[str] = typer.Option(
        [], "--output", help="PATH:KIND the command writes (model, feature_set, eval_report, ...)"
    ),
    code: list[Path] = typer.Option(
        [], "--code", help="a file or directory of the code the command runs (hashed)"
    ),
    at: str | None = typer.Option(None, "--at", help="business time (default: now)"),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Run COMMAND (after `--`) as a Keel step, or skip it when its outputs are stored."""
    from keel.steps import code_digest
    from keel_services.entrypoints.client import step

    argv = list(ctx.args)
    if not argv:
        raise KeelError(
            "no command to run", hint="put it after `--`: keel step run NAME ... -- python train.py"
        )
    wanted = _outputs(outputs)
    missing = [str(c) for c in code if not c.exists()]
    if missing:
        raise KeelError(f"--code {', '.join(missing)}: no such file or directory")
    digest = hashlib.sha256("\0".join(argv).encode())
    if code:
        digest.update(code_digest(None, code).encode())
    kinds = [k for _, k in wanted]
    restored: dict[str, str] = {}
    problem: KeelError | None = None
    with step(
        name,
        family=family,
        inputs=inputs,
        params=parse_params(params),
        outputs=kinds,
        at=business_time(at)[0],
        code_version=digest.hexdigest(),
        code=" ".join(argv),
    ) as s:
        skipped = s.done
        if skipped:
            # A failed restore is not a failed run of the command: keep it out of the step's
            # record (an exception in this block is recorded as TrainingFailed) and raise after.
            try:
                restored = _restore(s, wanted)
            except KeelError as exc:
                problem = exc
        else:
            _run(s, argv)
            for path, kind in wanted:
                if not path.is_file():
                    raise CommandFailed(f"the command exited 0 but did not write {path}")
                s.output(path, kind)
    if problem is not None:
        raise problem
    doc = {"step": name, "skipped": skipped, "outputs": {**s.ids, **s.stored}}
    if json_out:
        print_json({**doc, "restored": restored} if skipped else doc)
        return
    verb = "skipped (outputs stored)" if skipped else "ran"
    console.print(f"{name}: {verb}", highlight=False, markup=False)
    for kind, aid in {**s.ids, **s.stored}.items():
        console.print(f"  {kind} {aid}", highlight=False, markup=False)
    for where, state in restored.items():
        console.print(f"  {where}: {state}", highlight=False, markup=False)


def _restore(s: object, wanted: list[tuple[Path, str]]) -> dict[str, str]:
    """Each stored output back at its --output path, verified against the digest its signed
    ArtifactRecorded states. What is there is replaced, as the command itself would have (a
    link is replaced, not written through)."""
    from keel.artifacts.export import UNCHANGED, write_artifact
    from keel.steps import Step

    assert isinstance(s, Step)
    out: dict[str, str] = {}
    for path, kind in wanted:
        aid = s.ids.get(kind)
        if aid is None:  # a dataset: its ID comes from its content, known only after a run
            out[str(path)] = "not restored (a dataset output has no ID before it is ingested)"
            continue
        node = s.ctx.read.artifact(aid) or {}
        state = write_artifact(
            s.ctx.rt.artifacts, aid, path, replace=True, recorded=node.get("digest") or None
        )
        out[str(path)] = "already in place" if state == UNCHANGED else "restored"
    return out


def _run(s: object, argv: list[str]) -> None:
    from keel.steps import Step

    assert isinstance(s, Step)
    with tempfile.TemporaryDirectory(prefix="keel-step-inputs-") as d:
        paths = []
        for i, aid in enumerate(s.inputs):
            p = Path(d) / f"{i}-{aid[:12]}"
            with open(p, "wb") as out:
                s.ctx.rt.artifacts.copy_to(aid, out)  # verified, in bounded memory
            paths.append(str(p))
        env = {
            **os.environ,
            "KEEL_INPUTS": "\n".join(paths),
            "KEEL_INPUT_IDS": "\n".join(s.inputs),
        }
        env.update({f"KEEL_INPUT_{i}": p for i, p in enumerate(paths)})
        try:
            done = subprocess.run(argv, env=env, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise CommandFailed(f"could not start {argv[0]!r}: {exc.strerror or exc}") from None
    if done.stderr:
        err_console.print(done.stderr[-TAIL:], end="", highlight=False, markup=False)
    if done.returncode != 0:
        raise CommandFailed(
            f"exit status {done.returncode}; stderr: {done.stderr[-TAIL:].strip() or '(empty)'}"
        )
