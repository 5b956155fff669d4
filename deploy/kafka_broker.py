"""A single-node KRaft broker in its own directory (config, data, logs, pid) on 127.0.0.1.

Kafka's jars come from Maven Central through `mvn` (deploy/kafka/pom.xml) into
~/.cache/keel/kafka-<version>/libs, once."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from deploy import components, modes
from deploy.cache_lock import one_installer
from deploy.processes import LaunchError, Process, forget_secrets, free_port, port_open, spawn

KAFKA_VERSION = "4.1.1"  # keep in step with deploy/kafka/pom.xml
HERE = Path(__file__).resolve().parent
CACHE = components.CACHE


@one_installer(lambda: CACHE)  # one installer at a time per cache
def kafka_libs() -> Path:
    """The broker's jars, fetched from Maven Central on first use."""
    libs = CACHE / f"kafka-{KAFKA_VERSION}" / "libs"
    if (libs / f"kafka_2.13-{KAFKA_VERSION}.jar").exists():
        return libs
    tmp = libs.with_name("libs.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = [
        components.mvn(),
        "-q",
        "-B",
        "-f",
        str(HERE / "kafka" / "pom.xml"),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={tmp}",
    ]
    print(f"keel setup: fetching Kafka {KAFKA_VERSION}'s jars from Maven Central into {libs}",
          file=sys.stderr, flush=True)  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, env=components.java_env())
    if done.returncode != 0:
        raise LaunchError(
            f"mvn could not fetch Kafka {KAFKA_VERSION}:\n"
            f"{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    tmp.rename(libs)  # only a complete download becomes the cache
    return libs


def _java(libs: Path, main: str, args: list[str], logs: Path, heap: str = "512m") -> list[str]:
    return [
        components.java(),
        f"-Xmx{heap}",
        f"-Xms{heap}",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={logs}",
        f"-Dlog4j2.configurationFile={HERE / 'kafka' / 'log4j2.properties'}",
        "-cp",
        f"{libs}/*",
        main,
        *args,
    ]


@dataclass
class Kafka:
    """One single-node KRaft broker in `root` (config, data, logs).

    secure (the default for tests and `make up`): clients reach `port` only over TLS with
    SASL/SCRAM-SHA-512, KRaft's StandardAuthorizer denies what no ACL allows, and the broker's
    own traffic (controller, inter-broker) runs over mutual TLS on ports of its own. The
    credentials and certificates are generated into root/secrets (deploy.security) and linked
    where clients find them. secure=False: the old open PLAINTEXT broker."""

    root: Path
    port: int
    controller_port: int
    secure: bool = True
    internal_port: int = 0
    secrets_dir: Path | None = None  # shared by a stack's servers; default root/secrets

    def __post_init__(self) -> None:
        if self.secure and not self.internal_port:
            self.internal_port = free_port()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secrets_root(self) -> Path:
        return (self.secrets_dir or self.root / "secrets").resolve()

    @property
    def process(self) -> Process:
        return Process("kafka", self.root / "kafka.pid")

    def config(self) -> Path:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.root / "data"),
            # One node: internal topics cannot have more replicas than brokers.
            "offsets.topic.replication.factor": "1",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "num.partitions": "1",
            # Topics are provisioned from Keel's declarative table, never by accident.
            "auto.create.topics.enable": "false",
        }
        if self.secure:
            props.update(self._secure_props())
        path = self.root / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        path.chmod(0o600)
        return path

    def _secure_props(self) -> dict[str, str]:
        from deploy import security

        security.make_secrets(self.secrets_root)
        listeners = {
            "SASL_SSL": ("127.0.0.1", self.port),
            "INTERNAL": ("127.0.0.1", self.internal_port),
        }
        return security.kafka_props(self.secrets_root, listeners, self.controller_port)

    def _scram_args(self) -> list[str]:
        from deploy import security

        return security.scram_args(security.make_secrets(self.secrets_root))

    def client_config(self, principal: str = "operator") -> dict[str, object]:
        """librdkafka settings to reach this broker as `principal` (tests, the launcher)."""
        if not self.secure:
            return {"bootstrap.servers": self.bootstrap}
        from keel.secure.credentials import Secrets

        return {
            "bootstrap.servers": self.bootstrap,
            **Secrets(self.secrets_root).librdkafka(principal),
        }

    def stored_mode(self) -> str | None:
        """The mode its storage was formatted for (None: not formatted yet). Storage formatted
        before the launcher recorded modes tells by the listeners its config last had."""
        if not (self.root / "data" / "meta.properties").exists():
            return None
        if have := modes.recorded(self.root):
            return have
        props = self.root / "server.properties"
        text = props.read_text() if props.exists() else ""
        return modes.name("SASL_SSL" in text)

    def mode_conflict(self) -> str | None:
        return modes.conflict("Kafka", self.root, self.stored_mode(), self.secure)

    def start(self, timeout: float = 90.0) -> Kafka:
        if conflict := self.mode_conflict():
            raise LaunchError(conflict)
        if self.process.pid() is not None and port_open(self.port):
            return self
        if port_open(self.port):
            raise LaunchError(
                f"port {self.port} is taken by something else (not a broker this launcher "
                f"started from {self.root}): stop that process, or pick another port with "
                f"`python -m deploy.launcher up --kafka-port N`",
            )
        libs = kafka_libs()
        if not self.secure:
            forget_secrets(self.port)  # a link left by a killed secured run would mislead clients
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        cfg = self.config()
        if not (self.root / "data" / "meta.properties").exists():
            # May start with "-" (URL-safe base64): passed as --cluster-id=… so argparse
            # does not take it for an option.
            cluster_id = _kafka_uuid()
            fmt = subprocess.run(
                _java(
                    libs,
                    "kafka.tools.StorageTool",
                    [
                        "format",
                        f"--cluster-id={cluster_id}",
                        f"--config={cfg}",
                        *(self._scram_args() if self.secure else []),
                    ],
                    self.root / "logs",
                    "256m",
                ),
                capture_output=True,
                text=True,
            )
            if fmt.returncode != 0:
                raise LaunchError(
                    f"formatting Kafka storage failed:\n{fmt.stdout[-2000:]}{fmt.stderr[-2000:]}"
                )
            modes.record(self.root, self.secure)
        spawn(
            _java(libs, "kafka.Kafka", [str(cfg)], self.root / "logs"),
            self.root / "logs" / "stdout.log",
            self.process.pid_file,
        )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                tail = (self.root / "logs" / "stdout.log").read_text()[-2000:]
                raise LaunchError(f"the Kafka broker exited while starting:\n{tail}")
            if port_open(self.port):
                try:
                    AdminClient({**self.client_config(), "log_level": 2}).list_topics(timeout=5)
                    if self.secure:
                        from deploy import security

                        security.register(self.secrets_root, "127.0.0.1", self.port)
                    return
                except Exception as exc:  # not ready yet: the admin client raises KafkaException
                    last = str(exc)
            time.sleep(0.5)
        raise LaunchError(
            f"Kafka on {self.bootstrap} did not answer within {timeout:.0f} s ({last})"
        )

    def stop(self) -> None:
        self.process.stop()
        if self.secure:
            from deploy import security

            security.unregister("127.0.0.1", self.port)


def _kafka_uuid() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
