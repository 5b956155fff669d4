"""Credentials and certificates for a local secured stack, generated with `cryptography`.

One directory per stack (mode 0700; files 0600), laid out as keel.secure.credentials reads it:
ca.pem, kafka/<principal>.password, redis/<user>.password, s3/<principal>.json; plus what only
the servers read: server/ca.key, server/server.pem (key + certificate for 127.0.0.1, localhost
and the compose service names). Made once, reused on restart. `register` links the directory
under ~/.config/keel/clusters/<host>_<port> so every Keel process connecting to that address
finds it; nothing secret is ever printed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import json
import os
import secrets
from pathlib import Path
from typing import Any

from keel.secure import acl
from keel.secure.credentials import PROJECTOR, Secrets, address_key, clusters_dir

BROKER = "kafka-broker"  # the broker's own certificate name: its inter-node principal
HOSTS = ("127.0.0.1", "localhost", "kafka", "redis", "s3")
REDIS_USERS = (PROJECTOR, "reader", "default")
S3_PRINCIPALS = tuple(acl.principals())  # the operator's identity is the store's admin


def _write(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def _cert(subject: str, key, issuer_name, issuer_key, ca: bool):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    b = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer_name or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        sans: list[x509.GeneralName] = []
        for h in HOSTS:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                sans.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False).add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
    return b.sign(issuer_key, hashes.SHA256())


def make_secrets(root: Path) -> Secrets:
    """Create what is missing in `root` (existing files are kept: a restarted stack keeps its
    credentials) and return it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root.chmod(0o700)
    pem = serialization.Encoding.PEM
    pkcs8 = serialization.PrivateFormat.PKCS8
    plain = serialization.NoEncryption()
    if not (root / "server" / "server.pem").exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _cert("Keel local CA", ca_key, None, ca_key, ca=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _cert(BROKER, key, ca.subject, ca_key, ca=False)
        _write(root / "server" / "ca.key", ca_key.private_bytes(pem, pkcs8, plain))
        _write(root / "ca.pem", ca.public_bytes(pem))
        _write(
            root / "server" / "server.pem",
            key.private_bytes(pem, pkcs8, plain) + cert.public_bytes(pem) + ca.public_bytes(pem),
        )
        _write(root / "server" / "server.key", key.private_bytes(pem, pkcs8, plain))
        _write(root / "server" / "server.crt", cert.public_bytes(pem))
    for p in [*acl.principals(), BROKER]:
        if not (root / "kafka" / f"{p}.password").exists():
            _write(root / "kafka" / f"{p}.password", secrets.token_urlsafe(24))
    for u in REDIS_USERS:
        if not (root / "redis" / f"{u}.password").exists():
            _write(root / "redis" / f"{u}.password", secrets.token_urlsafe(24))
    for p in S3_PRINCIPALS:
        if not (root / "s3" / f"{p}.json").exists():
            doc = {
                "access_key": f"keel-{p}-" + secrets.token_hex(6),
                "secret_key": secrets.token_hex(20),
            }
            _write(root / "s3" / f"{p}.json", json.dumps(doc))
    return Secrets(root)


def kafka_props(
    seen_at: Path, listeners: dict[str, tuple[str, int]], controller_port: int, host: str = ""
) -> dict[str, str]:
    """A secured broker's settings: client listeners (SASL_SSL, or names mapped to it) with
    SCRAM-SHA-512 over TLS; the broker's own listeners (INTERNAL, CONTROLLER) on mutual TLS
    with its certificate; StandardAuthorizer, nothing allowed without an ACL. `seen_at` is
    where the server process sees the secrets directory (a path, or a container mount)."""
    server = seen_at / "server"
    bind = {name: f"{name}://{host or h}:{p}" for name, (h, p) in listeners.items()}
    clients = [n for n in listeners if n != "INTERNAL"]
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    return {
        "listeners": ",".join(
            [*bind.values(), f"CONTROLLER://{host or '127.0.0.1'}:{controller_port}"]
        ),
        "advertised.listeners": ",".join(f"{n}://{h}:{p}" for n, (h, p) in listeners.items()),
        "listener.security.protocol.map": ",".join(
            [*(f"{n}:SASL_SSL" for n in clients), "INTERNAL:SSL", "CONTROLLER:SSL"]
        ),
        "inter.broker.listener.name": "INTERNAL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        # The server side of SCRAM needs no secret: it checks against KRaft's metadata.
        **{f"listener.name.{n.lower()}.scram-sha-512.sasl.jaas.config": scram for n in clients},
        # The broker's own listeners want its certificate: nobody else gets in there.
        "listener.name.internal.ssl.client.auth": "required",
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.principal.mapping.rules": "RULE:^CN=([^,]*).*$/$1/,DEFAULT",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{BROKER};User:operator",
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(server / "server.pem"),
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(seen_at / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "https",
    }


def scram_args(sec: Secrets) -> list[str]:
    """`kafka-storage format` arguments creating every principal's SCRAM credential."""
    out = []
    for p in sec.principals("kafka"):
        out += ["--add-scram", f"SCRAM-SHA-512=[name={p},password={sec.secret('kafka', p)}]"]
    return out


# The projector writes the views (no admin or dangerous commands: no FLUSHALL, CONFIG, KEYS);
# readers run read commands and the read-only Lua script of the views (keel.views.redis).
REDIS_ACL = {
    PROJECTOR: "~* &* +@all -@admin -@dangerous",
    "reader": "~* &* -@all +@read +@connection +evalsha +eval +script|load -@dangerous",
}


def redis_acl(sec: Secrets) -> str:
    # The default user cannot be switched off: Redis 7.0 replays the append-only file as the
    # default user and checks each EXEC against its rules, so with it off a restart drops every
    # transaction. It keeps all rights behind a password that only the launcher's secrets hold
    # (redis/default.password: the operator's); a connection without AUTH gets nothing.
    default = hashlib.sha256(sec.secret("redis", "default").encode()).hexdigest()
    lines = [f"user default on #{default} ~* &* +@all"]
    for user, rules in REDIS_ACL.items():
        pw = hashlib.sha256(sec.secret("redis", user).encode()).hexdigest()
        lines.append(f"user {user} on #{pw} {rules}")
    return "\n".join(lines) + "\n"


def cluster_id() -> str:
    import base64
    import uuid

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def s3_actions(principal: str) -> list[str]:
    """The operator administers the store (makes the write-once buckets); every other
    principal reads, writes and lists, and the buckets' policy and lock refuse the rest."""
    base = ["Read", "Write", "List", "Tagging"]
    return ["Admin", *base] if principal == "operator" else base


def write_once_bucket(s3: Any, bucket: str) -> bool:
    """Make `bucket` write-once (object lock in COMPLIANCE mode for a century, versioning on,
    and the no-delete policy). False when it already existed (made so at its creation: its
    policy forbids redoing it)."""
    try:
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        return False
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Years": 100}},
        },
    )
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(bucket_policy(bucket)))
    return True


def bucket_policy(bucket: str) -> dict[str, object]:
    """No principal may delete an object or a version, or change the bucket's protections;
    the one exception is the artifact store's outbox markers (keys under unannounced/),
    which it deletes once the artifact's event is recorded."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ArtifactsAreWriteOnce",
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
                "NotResource": [f"arn:aws:s3:::{bucket}/*unannounced/*"],
            },
            {
                "Sid": "ProtectionsStay",
                "Effect": "Deny",
                "Principal": "*",
                "Action": [
                    "s3:PutBucketPolicy",
                    "s3:DeleteBucketPolicy",
                    "s3:PutBucketObjectLockConfiguration",
                    "s3:PutBucketVersioning",
                    "s3:BypassGovernanceRetention",
                    "s3:DeleteBucket",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
        ],
    }


def register(root: Path, host: str, port: int) -> Path:
    """Link the stack's secrets where clients look for `host:port`."""
    link = clusters_dir() / address_key(host, port)
    link.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(root.resolve(), target_is_directory=True)
    return link


def holding(stack: Path, principal: str, into: Path) -> Path:
    """A secrets directory with only what `principal` needs (how a service is deployed):
    the CA, its Kafka password and S3 keys, and the projector's Redis user if it is the
    projector, else the read-only one."""
    import shutil

    into.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(stack / "ca.pem", into / "ca.pem")
    wanted = {
        "kafka": f"{principal}.password",
        "s3": f"{principal}.json",
        "redis": f"{PROJECTOR if principal == PROJECTOR else 'reader'}.password",
    }
    for kind, name in wanted.items():
        if (stack / kind / name).exists():
            (into / kind).mkdir(exist_ok=True, mode=0o700)
            shutil.copy(stack / kind / name, into / kind / name)
    return into


def unregister(host: str, port: int) -> None:
    link = clusters_dir() / address_key(host, port)
    if link.is_symlink():
        link.unlink()


def compose(out: Path) -> None:
    """Everything docker-compose.yml mounts at /secrets: the stack's secrets, one directory per
    service principal (principals/NAME, what that container gets as KEEL_SECRETS), the broker's
    properties and start script, Redis's users and SeaweedFS's identities."""
    sec = make_secrets(out)
    seen = Path("/secrets")
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": "1@kafka:9093",
        "controller.listener.names": "CONTROLLER",
        "log.dirs": "/var/lib/kafka/data",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        **kafka_props(
            seen,
            {
                "SASL_SSL": ("kafka", 9092),
                "INTERNAL": ("kafka", 9094),
                "HOST": ("127.0.0.1", 29092),
            },
            9093,
            host="0.0.0.0",
        ),
    }
    _write(out / "kafka.properties", "".join(f"{k}={v}\n" for k, v in props.items()))
    args = " ".join(f"'{a}'" for a in scram_args(sec))
    _write(
        out / "kafka-start.sh",
        "set -e\n"
        "/opt/kafka/bin/kafka-storage.sh format --ignore-formatted "
        f"--cluster-id={cluster_id()} "
        f"--config /secrets/kafka.properties {args}\n"
        "exec /opt/kafka/bin/kafka-server-start.sh /secrets/kafka.properties\n",
    )
    _write(out / "users.acl", redis_acl(sec))
    identities = [
        {
            "name": p,
            "credentials": [
                {
                    "accessKey": sec.s3(p)["aws_access_key_id"],
                    "secretKey": sec.s3(p)["aws_secret_access_key"],
                }
            ],
            "actions": s3_actions(p),
        }
        for p in sec.principals("s3")
    ]
    _write(out / "s3.json", json.dumps({"identities": identities}, indent=1))
    for p in [*acl.principals(), "operator"]:
        holding(out, p, out / "principals" / p)


def _operator_s3() -> Any:
    """An S3 client as the operator, from KEEL_SECRETS and AWS_ENDPOINT_URL."""
    import boto3
    from botocore.config import Config

    from keel.secure.credentials import Secrets

    sec = Secrets(Path(os.environ["KEEL_SECRETS"]))
    return boto3.client(
        "s3",
        endpoint_url=os.environ["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
        verify=str(sec.ca),
        **sec.s3("operator"),
    )


if __name__ == "__main__":
    import sys

    usage = "usage: python -m deploy.security compose DIR | bucket NAME"
    if len(sys.argv) != 3:
        sys.exit(usage)
    if sys.argv[1] == "compose":
        compose(Path(sys.argv[2]))
        print(f"secrets for docker compose in {sys.argv[2]}")
    elif sys.argv[1] == "bucket":
        made = write_once_bucket(_operator_s3(), sys.argv[2])
        print(f"bucket {sys.argv[2]}: {'made write-once' if made else 'exists'}")
    else:
        sys.exit(usage)
