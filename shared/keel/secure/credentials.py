"""Credentials for a secured Kafka, Redis or object store, found by the server's address.

A secured stack keeps one directory of secrets (the launcher writes one, mode 0700):

    ca.pem                         the CA that signed the servers' certificates
    kafka/<principal>.password     SCRAM-SHA-512 password of a Kafka principal
    redis/<user>.password          password of a Redis ACL user (projector, reader; default:
                                   the operator's)
    s3/<principal>.json            {"access_key", "secret_key"} of an object-store identity

Which directory: KEEL_SECRETS if set, else ~/.config/keel/clusters/<host>_<port> for the
address a client connects to (the launcher links its directory there for every server it
starts, the way ~/.aws/credentials or a kubeconfig works). No directory for an address: the
server is an open one (the embedded default and `make up INSECURE=1` stay zero-config).

A process holds only the files of the principals it may act as: a service deployed alone gets
its own; a developer's stack, like the keys directory, holds all of them. Passwords are read
when a client is made and never logged: errors name the principal and the directory only.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keel.errors import ConfigError

OPERATOR = "operator"  # `keel topics apply`: creates topics and ACLs; the one Kafka superuser
PROJECTOR = "projector"  # writes the audit topic and the views
READER = "reader"  # Redis: every process that reads the views and does not fold them
PEOPLE = "cli"  # a person at the CLI or an HTTP API (their roles are the signatures' business)
SCRAM = "SCRAM-SHA-512"


def clusters_dir() -> Path:
    from keel.settings import Settings

    return Settings().clusters_dir()


def address_key(host: str, port: int | str) -> str:
    return f"{host}_{port}"


@dataclass(frozen=True)
class Secrets:
    root: Path

    @property
    def ca(self) -> Path:
        return self.root / "ca.pem"

    def has(self, kind: str, principal: str) -> bool:
        return self._file(kind, principal).is_file()

    def principals(self, kind: str) -> list[str]:
        d = self.root / kind
        return sorted(p.name.split(".", 1)[0] for p in d.iterdir()) if d.is_dir() else []

    def _file(self, kind: str, principal: str) -> Path:
        return self.root / kind / (principal + (".json" if kind == "s3" else ".password"))

    def secret(self, kind: str, principal: str) -> str:
        path = self._file(kind, principal)
        try:
            return path.read_text().strip()
        except OSError:
            held = ", ".join(self.principals(kind)) or "none"
            raise ConfigError(
                f"no {kind} credentials for principal {principal!r} in {self.root} "
                f"(this process holds: {held})",
                hint=f"give this process {path.relative_to(self.root)} from the stack's secrets, "
                "or run it as a principal it holds",
            ) from None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    # -- clients ---------------------------------------------------------------------------
    def librdkafka(self, principal: str) -> dict[str, Any]:
        """confluent-kafka (librdkafka) settings for SASL_SSL as `principal`."""
        return {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": SCRAM,
            "sasl.username": principal,
            "sasl.password": self.secret("kafka", principal),
            "ssl.ca.location": str(self.ca),
        }

    def aiokafka(self, principal: str) -> dict[str, Any]:
        return {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM,
            "sasl_plain_username": principal,
            "sasl_plain_password": self.secret("kafka", principal),
            "ssl_context": self.ssl_context(),
        }

    def redis(self, user: str) -> dict[str, Any]:
        """redis-py connection arguments: TLS verified against the CA, an ACL user."""
        return {
            "username": user,
            "password": self.secret("redis", user),
            "ssl": True,
            "ssl_ca_certs": str(self.ca),
            "ssl_cert_reqs": "required",
        }

    def s3(self, principal: str) -> dict[str, str]:
        doc = json.loads(self.secret("s3", principal))
        return {"aws_access_key_id": doc["access_key"], "aws_secret_access_key": doc["secret_key"]}


def secrets_for(host: str, port: int | str) -> Secrets | None:
    """The secrets of the server at host:port, or None for an open server."""
    from keel.settings import Settings

    explicit = Settings().secrets
    if explicit is not None:
        root = explicit.expanduser()
        if not root.is_dir():
            raise ConfigError(
                f"KEEL_SECRETS {root} is not a directory",
                hint="point it at the stack's secrets directory (ca.pem, kafka/, redis/, s3/)",
            )
        return Secrets(root)
    root = clusters_dir() / address_key(host, port)
    return Secrets(root.resolve()) if root.is_dir() else None


def split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def process_principal(default: str = PEOPLE) -> str:
    """Who this process is to the servers when its adapters were not told (bootstrap passes
    Settings.principal, which `keel service run` / `keel serve` set to the service they run):
    KEEL_PRINCIPAL, else a person's principal."""
    from keel.settings import Settings

    # a Settings of its own, read now: an adapter opened without a runtime's settings
    return Settings().principal or default


def writer_principal(secrets: Secrets, identity: str, fallback: str) -> str:
    """The principal that writes an event signed by `identity`: the identity's own when this
    process holds it (a service's events go in as that service, the checkpoint signer's as the
    projector), else the process's (people share one principal; their roles are checked on
    the signatures)."""
    name = PROJECTOR if identity == "audit" else identity
    return name if name and secrets.has("kafka", name) else fallback
