"""`keel contracts infer` and `keel init`: from a data file to contracts and a working project."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from keel.errors import KeelError
from keel.infer import Inferred, infer
from keel.roles import METADATA_ROLES
from keel_services.entrypoints.cli.common import console, handled, print_json, safe
from keel_services.entrypoints.container import build

contracts_app = typer.Typer(help="Data contracts: infer them from a sample.", no_args_is_help=True)
SAMPLE = 10_000  # records read for inference

LabelOpt = typer.Option(..., "--label", help="the label column (training contract only)")
IdOpt = typer.Option(
    [], "--id", help="an ID column: metadata, never a feature (repeat for several)"
)
TimeOpt = typer.Option(
    [], "--time", help="a date/time column: metadata, never a feature (repeat for several)"
)
FeatureOpt = typer.Option(
    [], "--feature", help="make a column a feature that would be proposed as metadata (repeat)"
)
FamilyOpt = typer.Option(None, "--family", help="family name (default: from the file name)")
TaskOpt = typer.Option(
    None, "--task", help="binary | multiclass | regression (default: inferred from the label)"
)
BoundsOpt = typer.Option(False, "--bounds", help="observed ranges as keel.min / keel.max")
ForceOpt = typer.Option(False, "--force", help="overwrite existing files")
JsonOpt = typer.Option(False, "--json", help="print JSON")


def _sample(path: Path) -> list[dict[str, Any]]:
    from keel.readers import read_records  # the same readers as `keel ingest`

    rows: list[dict[str, Any]] = []
    unreadable = 0
    for _, rec in read_records(path):
        if isinstance(rec, dict):
            rows.append(rec)
        else:
            unreadable += 1
        if len(rows) >= SAMPLE:
            break
    if not rows:
        raise KeelError(
            f"{path}: no readable record ({unreadable} unreadable)",
            hint="give a CSV with a header, JSON Lines or Parquet",
        )
    return rows


def _infer(
    data: Path,
    label: str,
    roles: tuple[list[str], list[str], list[str]],
    family: str | None,
    task: str | None,
) -> tuple[Inferred, dict[str, Any]]:
    """The inference, and what the report says about how the file was read."""
    from keel.readers import DELIMITER_NAMES, csv_delimiter, is_csv

    if task not in (None, "binary", "multiclass", "regression"):
        raise KeelError(f"--task {task}: unknown", hint="binary, multiclass or regression")
    name = family or re.sub(r"\W+", "_", data.stem).strip("_").lower() or "family"
    ids, times, features = roles
    inf = infer(_sample(data), label, name, ids=ids, times=times, features=features, task=task)
    read: dict[str, Any] = {}
    if is_csv(data):
        read["delimiter"] = DELIMITER_NAMES[csv_delimiter(data)]
    return inf, read


def _write(files: dict[Path, str], force: bool) -> None:
    existing = [str(p) for p in files if p.exists()]
    if existing and not force:
        raise KeelError(f"{', '.join(existing)} exist(s)", hint="give --force to overwrite")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _contract_files(inf: Inferred, out: Path, bounds: bool) -> dict[Path, str]:
    return {
        out / "training.avsc": json.dumps(inf.training(bounds), indent=2) + "\n",
        out / "inference.avsc": json.dumps(inf.inference(bounds), indent=2) + "\n",
    }


def _report(inf: Inferred, files: list[Path], json_out: bool, extra: dict[str, Any]) -> None:
    left_out = [r for r in inf.report() if r["role"] in METADATA_ROLES]
    doc = {
        "family": inf.family,
        "task": inf.task,
        "rows_sampled": inf.rows,
        "columns": inf.report(),
        "features": [c.name for c in inf.features],
        "metadata": left_out,
        "written": [str(p) for p in files],
        **extra,
    }
    if json_out:
        print_json(doc)
        return
    t = Table(title=f"{inf.family}: task {inf.task}, from {inf.rows} records")
    for col in ("column", "role", "type", "nullable", "why"):
        t.add_column(col, overflow="fold")
    for c in doc["columns"]:
        t.add_row(c["column"], c["role"], c["type"], "yes" if c["nullable"] else "no", c["why"])
    console.print(t)
    if "delimiter" in extra:
        say(f"read as CSV delimited by {extra['delimiter']} (detected from the first lines)")
    say(f"features ({len(doc['features'])}): {', '.join(doc['features']) or 'none'}")
    if left_out:
        say(
            f"left out of the features ({len(left_out)}): metadata, kept with the training "
            "data, never given to the model, not sent by callers at serving:"
        )
        for r in left_out:
            say(f"  {r['column']} ({r['role']}): {r['why'].split('; metadata')[0]}")
        say("  to make one a feature instead: --feature NAME (with --force to rewrite)")
    for p in files:
        say(f"wrote {p}")
    for k in extra.get("private_keys", []):
        say(f"wrote {k['path']}: the private signing key of {k['identity']}, outside the project")
    if extra.get("private_keys"):
        say("  keep them secret and out of version control; keys.toml has the public halves")


def say(text: str) -> None:
    """Recorded names and paths are data: printed as they are, never read as markup."""
    console.print(escape(safe(text)), highlight=False, soft_wrap=True)  # paths stay whole


@contracts_app.command("infer")
@handled
def contracts_infer(
    data: Path = typer.Argument(..., help="CSV, JSON Lines or Parquet sample"),
    label: str = LabelOpt,
    ids: list[str] = IdOpt,
    times: list[str] = TimeOpt,
    features: list[str] = FeatureOpt,
    family: str | None = FamilyOpt,
    task: str | None = TaskOpt,
    bounds: bool = BoundsOpt,
    out: Path = typer.Option(Path("."), "--out", help="directory for the two .avsc files"),
    force: bool = ForceOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Write training.avsc (features, the label in keel.labels, IDs, times and unusable text as
    keel.metadata) and inference.avsc (features only), with a report of every decision and why.
    IDs and dates are detected by name, uniqueness and type; --id / --time / --feature decide."""
    inf, read = _infer(data, label, (ids, times, features), family, task)
    files = _contract_files(inf, out, bounds)
    _write(files, force)
    _report(inf, list(files), json_out, read)


def _record_keyring(project_file: Path) -> list[str]:
    """The initial keyring into the trail of KEEL_HOME, signed by the admin key (KEEL_ADMIN_DIR,
    outside the home; made on first use): decision 0022."""
    from keel.keyring_admin import record
    from keel.settings import Settings
    from keel.signing import default_admin_dir

    with build(Settings(project=project_file, trust=project_file.with_name("keys.toml"))) as app:
        rt = app.rt
        events = record(rt, default_admin_dir(), "keel init")
    return [f"{e.EVENT_TYPE} {e.key_id}" for e in events]


@handled
def init(
    directory: Path = typer.Argument(Path("."), help="the project directory"),
    data: Path = typer.Option(..., "--from", help="CSV, JSON Lines or Parquet sample"),
    label: str = LabelOpt,
    ids: list[str] = IdOpt,
    times: list[str] = TimeOpt,
    features: list[str] = FeatureOpt,
    family: str | None = FamilyOpt,
    task: str | None = TaskOpt,
    bounds: bool = BoundsOpt,
    keys: bool = typer.Option(
        True,
        "--keys/--no-keys",
        help="create signing keys (keys.toml here, private keys in KEEL_KEYS_DIR)",
    ),
    force: bool = ForceOpt,
    json_out: bool = JsonOpt,
) -> None:
    """Scaffold a working project from a data sample: keel.toml (family, task, metrics,
    environments, a starter policy), inferred contracts, a plugins module with a plain feature
    transform and a default scikit-learn trainer. `keel ingest` and `keel retrain` then work."""
    from keel import scaffold

    inf, read = _infer(data, label, (ids, times, features), family, task)
    files = {
        directory / "keel.toml": scaffold.keel_toml(inf),
        directory / f"{inf.family}_plugins.py": scaffold.plugins(inf),
        **_contract_files(inf, directory / "contracts" / inf.family, bounds),
    }
    _write(files, force)
    made: list[dict[str, str]] = []
    written = list(files)
    if keys:
        from keel.signing import DEFAULT_ROLES, create_key, default_keys_dir, load_trust

        trust_file = directory / "keys.toml"
        have = {k.identity for k in load_trust(trust_file).keys.values()}
        keys_dir = default_keys_dir()
        for identity in DEFAULT_ROLES:
            if identity not in have:
                key = create_key(identity, trust_file, keys_dir)
                # where create_key writes the private half; named so no one hunts for it
                path = keys_dir / f"{identity}.{key.id}.key"
                made.append({"identity": identity, "path": str(path)})
        if made:
            written.append(trust_file)
        recorded = _record_keyring(directory / "keel.toml")
    extra = {**read, "keys_created": [k["identity"] for k in made], "private_keys": made}
    if keys:
        extra["keyring_recorded"] = recorded
    _report(inf, written, json_out, extra)
    if not json_out:
        say(
            f"next: export KEEL_PROJECT={directory / 'keel.toml'}; "
            f"keel ingest FILE --family {inf.family}; "
            f"keel retrain --family {inf.family} --eval-dataset HOLDOUT_ID"
        )
