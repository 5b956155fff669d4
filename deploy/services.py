"""Keel's services as OS processes beside the stack (`keel service run NAME`), and the
environment every Keel process of the stack needs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from deploy.kafka_broker import Kafka
from deploy.object_store import ObjectStore
from deploy.processes import LaunchError, Process, spawn
from deploy.redis_server import Redis

SERVICES = ("ingest", "feature", "train", "promote", "deploy", "projector", "audit")
HTTP_PORTS = {"ingest": 8081, "audit": 8082}


def service_names(spec: str) -> list[str]:
    """`--services` as names: comma-separated, or 'all'; an unknown name is an error."""
    names = list(SERVICES) if spec == "all" else [n for n in spec.split(",") if n]
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        raise LaunchError(f"unknown service(s) {unknown}; one of {', '.join(SERVICES)}")
    return names


def stack_env(kafka: Kafka, redis: Redis, store: ObjectStore, home: Path) -> dict[str, str]:
    """What every Keel process of the stack needs (also written to DIR/keel.env)."""
    return {
        "KEEL_BUS": f"kafka://{kafka.bootstrap}",
        "KEEL_VIEWS": redis.url,
        "KEEL_ARTIFACTS": "s3://keel-artifacts",
        "KEEL_INLINE_SERVICES": "false",
        "KEEL_HOME": str(home),
        # Secured, each process signs in to S3 as its own principal (keel.secure.credentials):
        # the admin's keys stay with the launcher.
        **{
            k: v
            for k, v in store.env().items()
            if not (store.secure and k.startswith(("AWS_ACCESS", "AWS_SECRET")))
        },
    }


def start_services(root: Path, names: list[str], env: dict[str, str]) -> list[str]:
    """Each service as its own OS process (`keel service run NAME`), pid and log in root."""
    keel = str(Path(sys.executable).with_name("keel"))
    project = Path(os.environ.get("KEEL_PROJECT", "keel.toml"))
    if names and not project.is_file():
        raise LaunchError(
            f"the services need a project: {project} is not a file; run from a project "
            "directory or set KEEL_PROJECT (e.g. after `keel demo --workdir wd`, "
            "KEEL_PROJECT=wd/keel.toml)"
        )
    root.mkdir(parents=True, exist_ok=True)
    started = []
    for name in names:
        proc = Process(name, root / f"{name}.pid")
        if (pid := proc.pid()) is not None:
            started.append(f"{name} (already running, pid {pid})")
            continue
        args = [keel, "service", "run", name]
        if name in HTTP_PORTS:
            args += ["--port", str(HTTP_PORTS[name])]
        full_env = {**os.environ, **env, "KEEL_PROJECT": str(project.resolve())}
        pid = spawn(args, root / f"{name}.log", proc.pid_file, env=full_env)
        started.append(f"{name} (pid {pid}, log {root / f'{name}.log'})")
    return started


def stop_services(root: Path) -> None:
    for name in SERVICES:
        Process(name, root / f"{name}.pid").stop()
