"""SeaweedFS (built from source) on 127.0.0.1 in its own directory: `weed server` (master and
volume server) and `weed filer -s3` (the filer with its S3 gateway) as two processes;
per-principal identities and write-once artifact buckets when secured.

Two processes so that they stop in order (issue 35: a stop took ~17 s). In one `weed server`
the volume server stopped before the filer, whose last metadata-log flush then found no volume
to write to and retried until its 15 s shutdown budget ran out (dropping that log). Now the
filer stops first, flushing into the running volume server, then the master and volume."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import components, modes
from deploy.processes import LaunchError, Process, bindable, free_port, port_open, spawn


class PortTaken(LaunchError):
    """A server could not bind a port chosen for it a moment earlier."""


def filer_ports(start: int) -> tuple[int, int]:
    """The filer's HTTP and gRPC ports: P and P + 10000, both free, P at or below `start`.
    The filer's embedded S3 gateway dials the filer's gRPC at its HTTP port + 10000 (SeaweedFS's
    default) whatever -port.grpc says (seen with the pinned version: it never came up), so the
    pair must follow that rule."""
    for port in range(min(start, 65535 - 10000), 1024, -1):
        if bindable(port) and bindable(port + 10000):
            return port, port + 10000
    raise LaunchError("no free pair of ports P, P + 10000 for SeaweedFS's filer on 127.0.0.1")


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
        """The master and volume server (`weed server`)."""
        return Process("seaweedfs", self.root / "weed.pid")

    @property
    def filer(self) -> Process:
        """The filer and its S3 gateway (`weed filer -s3`), stopped first."""
        return Process("seaweedfs-filer", self.root / "filer.pid")

    def running(self) -> bool:
        return self.process.pid() is not None and self.filer.pid() is not None

    def credentials(self) -> dict[str, str]:
        """{"access_key", "secret_key"} of the admin identity (created on first use)."""
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

    def stored_mode(self) -> str | None:
        """The mode its buckets were made in (None: no data yet). Data from before the launcher
        recorded modes tells by the identities its S3 config last had (secured: one per
        principal beside the admin)."""
        if not (self.root / "data").exists():
            return None
        if have := modes.recorded(self.root):
            return have
        config = self.root / "s3.json"
        identities = json.loads(config.read_text())["identities"] if config.exists() else []
        return modes.name(len(identities) > 1)

    def mode_conflict(self) -> str | None:
        return modes.conflict("SeaweedFS", self.root, self.stored_mode(), self.secure)

    def start(self, timeout: float = 90.0) -> ObjectStore:
        if conflict := self.mode_conflict():
            raise LaunchError(conflict)
        if self.running() and port_open(self.port):
            return self
        for _ in range(2):
            try:
                return self._start(timeout)
            except PortTaken:
                pass  # free when chosen, taken before SeaweedFS bound it: choose again
        return self._start(timeout)

    def _start(self, timeout: float) -> ObjectStore:
        exe = components.weed()
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        modes.record(self.root, self.secure)  # before its first write: the data is this mode's
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        grpc = {name: free_port() for name in ("master", "volume", "s3")}
        ports["filer"], grpc["filer"] = filer_ports(ports["filer"])
        server = [
            exe,
            "server",
            f"-dir={data}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={grpc['master']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={grpc['volume']}",
            # A fixed count, not 0 ("free disk / volumeSizeLimitMB"): every bucket is a collection
            # that takes 7 volumes when first written, and on a disk with ~21 GiB free the
            # auto count left room for three buckets (CI at stop 43). Volumes are sparse files
            # (no preallocation), so the count costs nothing until written; a full disk still
            # turns them read-only (-volume.minFreeSpace, 1% by default).
            "-volume.max=500",
            # One node, stopped by `down` when nothing writes: no need for the default 10 s
            # between leaving the master's topology and stopping (each stop took ~27 s).
            "-volume.preStopSeconds=0",
            "-master.volumeSizeLimitMB=1024",
            "-master.telemetry=false",
        ]
        filer = [
            exe,
            "filer",
            f"-master=127.0.0.1:{ports['master']}.{grpc['master']}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-port={ports['filer']}",
            f"-port.grpc={grpc['filer']}",
            f"-defaultStoreDir={data}",  # where `weed server -dir` kept the filer's store
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={grpc['s3']}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._config()}",
            *self._tls_args(),
        ]
        log_file = self.root / "weed.log"
        mark = log_file.stat().st_size if log_file.exists() else 0  # the log is appended to
        spawn(server, log_file, self.process.pid_file)
        spawn(filer, log_file, self.filer.pid_file)

        def this_start() -> str:
            with open(log_file, "rb") as f:
                f.seek(mark)
                return f.read().decode(errors="replace")

        def port_taken() -> PortTaken | None:
            lines = this_start().splitlines()
            bind = next((line for line in lines if "address already in use" in line), None)
            if bind is None:
                return None
            return PortTaken(
                f"SeaweedFS could not bind a port chosen for it (another process took it "
                f"meanwhile; starting again usually succeeds): {bind}"
            )

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if not self.running():
                self.stop()  # the other one, if it still runs
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
            self.stop()
            raise taken
        self.stop()  # never left running behind an error
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
        # the filer first: its last metadata-log flush needs the volume server still running
        self.filer.stop()
        self.process.stop()
        if self.secure:
            from deploy import security

            security.unregister("127.0.0.1", self.port)
