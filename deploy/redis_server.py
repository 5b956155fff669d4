"""redis-server on 127.0.0.1 in its own directory (data, log, pid): appendonly with fsync on
every write, TLS and ACL users when secured."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy import components, modes
from deploy.processes import LaunchError, Process, forget_secrets, port_open, spawn


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

    def stored_mode(self) -> str | None:
        """The mode its data was written in (None: no data yet). Data from before the launcher
        recorded modes tells by the ACL file only a secured server writes."""
        if not (self.root / "appendonlydir").exists():
            return None
        return modes.recorded(self.root) or modes.name((self.root / "users.acl").exists())

    def mode_conflict(self) -> str | None:
        return modes.conflict("Redis", self.root, self.stored_mode(), self.secure)

    def start(self, timeout: float = 20.0) -> Redis:
        if conflict := self.mode_conflict():
            raise LaunchError(conflict)
        if self.process.pid() is not None and port_open(self.port):
            return self
        exe = components.redis_server()
        self.root.mkdir(parents=True, exist_ok=True)
        modes.record(self.root, self.secure)  # before its first write: the data is this mode's
        if not self.secure:
            forget_secrets(self.port)
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
        spawn(cmd, self.root / "redis.log", self.process.pid_file)
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
