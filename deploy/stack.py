"""One stack directory's `up` and `down`: Kafka, Redis and SeaweedFS (and, on request, Keel's
services) started in order under the directory's lock, refused at once when a component's data
was made in the other security mode, and returned from only when ready to use."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from deploy import lock, modes, readiness
from deploy.kafka_broker import Kafka
from deploy.object_store import ObjectStore
from deploy.processes import LaunchError
from deploy.redis_server import Redis
from deploy.services import stack_env, start_services, stop_services

DEFAULT_PORTS = {"kafka_port": 9092, "controller_port": 9093, "redis_port": 6379, "s3_port": 8333}
PORTS_FILE = "ports.json"


def chosen_ports(given: dict[str, int | None], recorded: dict[str, int]) -> dict[str, int]:
    """Each port as given on the command line, else the one the directory's stack last started
    on (so `make down` after `make up PORTS=...` stops and forgets the right addresses), else
    the default."""
    return {k: given.get(k) or recorded.get(k) or v for k, v in DEFAULT_PORTS.items()}


def recorded_ports(root: Path) -> dict[str, int]:
    try:
        doc = json.loads((root / PORTS_FILE).read_text())
    except FileNotFoundError:
        return {}
    return {k: int(doc[k]) for k in DEFAULT_PORTS if k in doc}


@dataclass
class Stack:
    root: Path
    kafka: Kafka
    redis: Redis
    store: ObjectStore

    @classmethod
    def in_dir(
        cls,
        root: Path,
        *,
        kafka_port: int = DEFAULT_PORTS["kafka_port"],
        controller_port: int = DEFAULT_PORTS["controller_port"],
        redis_port: int = DEFAULT_PORTS["redis_port"],
        s3_port: int = DEFAULT_PORTS["s3_port"],
        secure: bool = True,
    ) -> Stack:
        shared = root / "secrets"  # one CA and one credential per principal for all servers
        return cls(
            root,
            Kafka(root / "kafka", kafka_port, controller_port, secure, secrets_dir=shared),
            Redis(root / "redis", redis_port, secure, secrets_dir=shared),
            ObjectStore(root / "seaweedfs", s3_port, secure, secrets_dir=shared),
        )

    def ports(self) -> dict[str, int]:
        return {
            "kafka_port": self.kafka.port,
            "controller_port": self.kafka.controller_port,
            "redis_port": self.redis.port,
            "s3_port": self.store.port,
        }

    @property
    def env_file(self) -> Path:
        return self.root / "keel.env"

    def mode_conflict(self) -> str | None:
        """Which components hold data made in the other mode, and what to do; None if none."""
        found = [(c.mode_conflict(), c.stored_mode()) for c in (self.kafka, self.redis, self.store)]
        conflicts = [(why, have) for why, have in found if why and have]
        if not conflicts:
            return None
        whys = "\n".join(why for why, _ in conflicts)
        return f"{whys}\n{modes.advice(self.root, conflicts[0][1])}"

    def up(self, services: list[str]) -> list[str]:
        """Start what is not running; returns the lines to print. Nothing is started when any
        component's data belongs to the other mode."""
        with lock.held(self.root, "up"):
            if conflict := self.mode_conflict():
                raise LaunchError(conflict)
            (self.root / PORTS_FILE).write_text(json.dumps(self.ports()))
            self.kafka.start()
            self.redis.start()
            self.store.start()
            changes = readiness.provisioned(self.kafka)
            env = stack_env(self.kafka, self.redis, self.store, self.root / "home")
            self.env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
            self.env_file.chmod(0o600)  # it holds the object store's credentials
            lines = [
                f"kafka {self.kafka.bootstrap}, redis {self.redis.url}, S3 {self.store.endpoint}",
                f"{'topics and ACLs' if self.kafka.secure else 'topics'}: {len(changes)} "
                "change(s), all visible to clients",
            ]
            lines += [f"service {s}" for s in start_services(self.root / "services", services, env)]
            return [*lines, f"point commands at it: source {self.env_file}"]

    def down(self) -> None:
        with lock.held(self.root, "down"):
            stop_services(self.root / "services")
            self.kafka.stop()
            self.redis.stop()
            self.store.stop()
