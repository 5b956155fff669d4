"""The demo story: a simulated year of monthly data, six retrains, every step leaving evidence.

Data: scikit-learn's breast-cancer set (569 biopsies). A stratified quarter is the held-out
evaluation dataset; the rest arrives in 12 monthly batches. March's export carries corrupt
records (quarantined at the boundary); November's and December's have their labels inverted by
an upstream bug that no schema can see, so December's model is worse and the prod gate stops it.
"""

from __future__ import annotations

import csv
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

FAMILY = "breast_cancer"
# A past year: on Kafka, record timestamps (= occurred_at) may not lie in the future.
YEAR = 2025
RETRAIN_MONTHS = (2, 4, 6, 8, 10, 12)
FLIPPED_MONTHS = (11, 12)
CORRUPT_MONTH = 3
QUESTION_DATE = datetime(YEAR, 7, 1, tzinfo=UTC)


def column_names() -> list[str]:
    from sklearn.datasets import load_breast_cancer

    return [re.sub(r"\W+", "_", n.strip()).lower() for n in load_breast_cancer().feature_names]


def monthly_batches() -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """(held-out records, 12 monthly batches), deterministic."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split

    data = load_breast_cancer()
    names = column_names()
    malignant = 1 - data.target  # sklearn: 0 = malignant
    records = [
        {
            "record_id": f"bc-{i:04d}",
            **{n: float(v) for n, v in zip(names, row, strict=True)},
            "malignant": int(malignant[i]),
        }
        for i, row in enumerate(data.data)
    ]
    idx = np.arange(len(records))
    train_idx, holdout_idx = train_test_split(
        idx, test_size=0.25, random_state=0, stratify=malignant
    )
    np.random.RandomState(7).shuffle(train_idx)
    batches = [[dict(records[i]) for i in part] for part in np.array_split(train_idx, 12)]
    for m in FLIPPED_MONTHS:
        for r in batches[m - 1]:
            r["malignant"] = 1 - r["malignant"]
    return [records[i] for i in holdout_idx], batches


def corrupt(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Four broken records of the kinds real exports produce."""
    base = batch[0]
    return [
        {**base, "record_id": "bc-x001", "mean_radius": "n/a"},
        {**base, "record_id": "bc-x002", "mean_area": -12.5},
        {**base, "record_id": "bc-x003", "mean_texture": ""},
        {**base, "record_id": "bc-x004", "malignant": 2},
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    cols = list(rows[0])
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
    return path


def prepare_workdir(workdir: Path) -> tuple[Path, Path]:
    """(home, project file). Refuses a workdir that already holds a Keel home."""
    from keel.errors import KeelError
    from keel.shipped import demo_contract

    home = workdir / "home"
    if home.exists() and any(home.iterdir()):
        raise KeelError(
            f"{home} already holds a Keel home", hint="give --workdir an empty or new directory"
        )
    (workdir / "incoming").mkdir(parents=True, exist_ok=True)
    contracts = workdir / "contracts" / FAMILY
    contracts.mkdir(parents=True, exist_ok=True)
    for name in ("training.avsc", "inference.avsc"):
        shutil.copyfile(demo_contract(FAMILY, name), contracts / name)
    project_file = workdir / "keel.toml"
    shutil.copyfile(Path(__file__).with_name("keel.toml"), project_file)
    # Every identity gets a key: public halves in keys.toml beside keel.toml, private halves in
    # workdir/keys, outside the home (whoever can write the home cannot sign).
    from keel.signing import DEFAULT_ROLES, create_key

    for identity in DEFAULT_ROLES:
        create_key(identity, project_file.with_name("keys.toml"), keys_dir(workdir))
    return home, project_file


def keys_dir(workdir: Path) -> Path:
    return workdir / "keys"


def admin_dir(workdir: Path) -> Path:
    """The admin's private key: outside the home and apart from the services' keys."""
    return workdir / "admin"


@dataclass
class StoryLog:
    steps: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        yield
        self.steps.append({"step": name, "seconds": round(time.perf_counter() - t0, 4)})


def run_story(
    workdir: Path, progress: Callable[[str], None], bus: str = "", views: str = ""
) -> dict[str, Any]:
    from keel.audit import keys
    from keel.audit.projectors import projector_for
    from keel.audit.reads import Reads
    from keel.project import load_project
    from keel.settings import Settings
    from keel_services.entrypoints.bus import build_bus
    from keel_services.entrypoints.container import build
    from keel_services.entrypoints.retrain import request_retrain
    from keel_services.entrypoints.wiring import ingest_file

    t_start = time.perf_counter()
    home, project_file = prepare_workdir(workdir)
    project = load_project(project_file)
    holdout, batches = monthly_batches()
    log = StoryLog()
    settings = Settings(
        home=home, bus=bus, views=views, project=project_file, keys_dir=keys_dir(workdir)
    )
    with build(settings) as app:
        rt = app.rt
        # the keyring enters the trail first, signed by the admin key (decision 0022)
        from keel.keyring_admin import record as record_keyring

        record_keyring(rt, admin_dir(workdir), "keel demo")
        ctx = build_bus(rt, project, actor="keel-demo").ctx
        ctx.correlation_id = f"{YEAR}-holdout"
        with log.step("ingest holdout"):
            holdout_csv = write_csv(workdir / "incoming" / "holdout.csv", holdout)
            ho = ingest_file(ctx, FAMILY, holdout_csv, datetime(YEAR, 1, 1, tzinfo=UTC), "holdout")
        progress(f"held-out evaluation dataset {ho.dataset_id[:12]}: {ho.accepted} records")
        datasets: list[str] = []
        for month in range(1, 13):
            ctx.correlation_id = f"{YEAR}-{month:02d}"
            rows = batches[month - 1] + (
                corrupt(batches[month - 1]) if month == CORRUPT_MONTH else []
            )
            path = write_csv(workdir / "incoming" / f"{YEAR}-{month:02d}.csv", rows)
            at = datetime(YEAR, month, 5, tzinfo=UTC)
            with log.step("ingest"):
                res = ingest_file(ctx, FAMILY, path, at, f"{YEAR}-{month:02d}")
            datasets.append(res.dataset_id)
            note = f", {res.quarantined} quarantined" if res.quarantined else ""
            progress(
                f"{YEAR}-{month:02d} ingest: {res.records_in} in, {res.accepted} accepted{note}"
            )
            if month in RETRAIN_MONTHS:
                at = datetime(YEAR, month, 25, tzinfo=UTC)
                with log.step("retrain+promote+deploy"):
                    done = request_retrain(ctx, FAMILY, list(datasets), ho.dataset_id, at)
                trained, evaluated = done.model, done.evaluation
                assert trained is not None and evaluated is not None  # inline: done or raised
                for d in done.decisions:
                    progress(
                        f"{YEAR}-{month:02d} model {trained.model_id[:12]} "
                        f"roc_auc={evaluated.metrics['roc_auc']:.4f}: "
                        f"{d['decision'].upper()} for {d['env']}"
                    )
        read = ctx.read
        prod_now = read.serving_now(FAMILY, "prod")
        staging_now = read.serving_now(FAMILY, "staging")
        envs = project.family(FAMILY).environments
        assert prod_now is not None and staging_now is not None

        def read_json(aid: str) -> Any:
            import json

            return json.loads(rt.artifacts.read_bytes(aid))

        # The answers come from the audit views, folded from the log like any later query.
        with log.step("project audit views"):
            projector_for(rt).run()
        ids = [m for m, _ in rt.views.index_range(keys.artifacts(), limit=10**6)]
        artifacts = dict(zip(ids, rt.views.get_many([keys.artifact(i) for i in ids]), strict=True))
        reads = Reads(rt.views)
        answers = {
            "serving_prod_at": reads.serving(FAMILY, "prod", QUESTION_DATE),
            "why_current_prod": reads.why_promoted(prod_now.model_id, "prod"),
            "staging_vs_prod": reads.diff(prod_now.model_id, staging_now.model_id, read_json),
        }
        doc = {
            "workdir": str(workdir),
            "bus": rt.settings.bus_url(),
            "views": rt.settings.views_url(),
            "home": str(home),
            "project": str(project_file),
            "keys_dir": str(keys_dir(workdir)),
            "admin_dir": str(admin_dir(workdir)),
            "family": FAMILY,
            "artifacts": sorted(artifacts),
            "artifacts_by_kind": dict(
                sorted(Counter(a["kind"] for a in artifacts.values() if a).items())
            ),
            "quarantined": (rt.views.get(keys.quarantine(FAMILY)) or {}).get("quarantined", 0),
            "promotions": [
                {
                    "model_id": d["model_id"],
                    "env": d["env"],
                    "decision": d["decision"],
                    "at": d["at"],
                    "reason": d["reason"],
                }
                for d in sorted(
                    read.decisions(FAMILY), key=lambda d: (d["at"], envs.index(d["env"]))
                )
            ],
            "deployments": [
                {
                    "env": iv.env,
                    "model_id": iv.model_id,
                    "at": iv.start.isoformat(),
                    "kind": iv.kind,
                    "manifest_id": iv.manifest_id,
                }
                for env in sorted(envs)
                for iv in read.intervals(FAMILY, env)
            ],
            "answers": answers,
            "events": read.applied(),
            "timings": {
                "total_seconds": round(time.perf_counter() - t_start, 3),
                "steps": log.steps,
            },
        }
    return doc
