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

from keel.secure import acl
from keel.secure.credentials import PROJECTOR, Secrets, address_key, clusters_dir

BROKER = "kafka-broker"  # the broker's own certificate name: its inter-node principal
HOSTS = ("127.0.0.1", "localhost", "kafka", "redis", "s3")
REDIS_USERS = (PROJECTOR, "reader")
S3_PRINCIPALS = ("ingest", "feature", "train", "deploy", "serve", "step", "cli", "audit")


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


# The projector writes the views (no admin or dangerous commands: no FLUSHALL, CONFIG, KEYS);
# readers run read commands and the read-only Lua script of the views (keel.views.redis).
REDIS_ACL = {
    PROJECTOR: "~* &* +@all -@admin -@dangerous",
    "reader": "~* &* -@all +@read +@connection +evalsha +eval +script|load -@dangerous",
}


def redis_acl(sec: Secrets) -> str:
    lines = ["user default off"]
    for user, rules in REDIS_ACL.items():
        pw = hashlib.sha256(sec.secret("redis", user).encode()).hexdigest()
        lines.append(f"user {user} on #{pw} {rules}")
    return "\n".join(lines) + "\n"


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


def unregister(host: str, port: int) -> None:
    link = clusters_dir() / address_key(host, port)
    if link.is_symlink():
        link.unlink()
