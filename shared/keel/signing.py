"""Who wrote it: Ed25519 signatures on every event, one signature per chunk of a batch.

A writer (a service, or a person at the CLI) signs what it appends. Signing each event alone
would cost one Ed25519 verification per event when checking (~7k/s per core here); instead
each appended batch is cut into chunks of up to SIGN_CHUNK events, the chunk's events become the
leaves of a small RFC 9162 Merkle tree, and the identity signs the tree's root once. Each event
carries its own signature record: identity, key ID, chunk size, its index and inclusion path,
and the chunk signature. So any one event can be checked alone (path -> root -> signature),
and checking a whole log costs one verification per chunk (cached by root). Decision 0009.

The public side (`Trust`) is the project's: keys.toml (written by `keel keys create`) lists
which key speaks for which identity, keel.toml's `[identities.NAME] emits = [...]` which event
types each identity may write (defaults below). Private keys live outside the repo and the home
(KEEL_KEYS_DIR, default ~/.config/keel/keys), one PEM file per key, never in the log.

keys.toml is the working copy of the keyring the trail records (decision 0022): the `admin`
identity, whose private key lives apart from the services' (KEEL_ADMIN_DIR, default
~/.config/keel/admin), signs every key added, rotated or retired, and any adoption of unsigned
history (`[[adopted]]`); `keel audit verify` fails, naming the key, where the two differ.
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from keel.audit import merkle
from keel.errors import ConfigError, KeelError

SIGN_CHUNK = 128
_MAGIC = b"KS1"
_CONTEXT = b"keel-signed-events/v1\n"

# Which event types each service identity writes, unless keel.toml says otherwise. A person
# gets a role by being declared in keel.toml, e.g. [identities.alice] emits = ["ModelDeployed"];
# approving or rejecting a pending promotion is a person's act: emits = ["PromotionReviewed"].
_QUARANTINE = ("EventQuarantined",)
_RECONCILE = ("SchemaReconciled", "SchemaReconciliationFailed")
DEFAULT_ROLES: dict[str, tuple[str, ...]] = {
    "ingest": ("DatasetIngested", "RecordQuarantined", "ArtifactRecorded", *_QUARANTINE),
    "feature": (
        "FeaturesBuilt",
        "ArtifactRecorded",
        "TrainingFailed",
        *_RECONCILE,
        *_QUARANTINE,
    ),
    "train": (
        "ModelTrained",
        "ModelEvaluated",
        "ArtifactRecorded",
        "TrainingFailed",
        *_RECONCILE,
        *_QUARANTINE,
    ),
    "promote": ("ModelPromoted", "PromotionRejected", "PromotionPending", *_QUARANTINE),
    "deploy": ("ModelDeployed", "ArtifactRecorded", "ArtifactRejected", *_RECONCILE, *_QUARANTINE),
    "serve": ("ArtifactRejected", "ServingStatsRecorded"),
    # keel.step / `keel step run`: a team's own pipeline recording the pipeline's facts
    "step": (
        "FeaturesBuilt",
        "ModelTrained",
        "ModelEvaluated",
        "ArtifactRecorded",
        "TrainingFailed",
    ),
    "cli": (
        "RetrainRequested",
        "DriftDetected",
        "ArtifactRecorded",
        "ArtifactRejected",
        *_RECONCILE,
    ),
    "contracts": _RECONCILE,  # `keel schemas reconcile`
    # `keel service run mlflow-bridge` / `keel mlflow import`: MLflow's registry in the trail;
    # PromotionRejected: an alias move that failed the family's [mlflow.gates] policy
    "mlflow_bridge": ("ModelDeployed", "ArtifactRecorded", "PromotionRejected", *_QUARANTINE),
    # the projector: signs checkpoints of the log's trees, and records the views snapshots it
    # stores in the artifact store (keel.audit.snapshot_store)
    "audit": ("Checkpoint", "ViewsSnapshotted", "ArtifactRecorded"),
}
# The administrative identity: writes the keyring into the trail. Not among DEFAULT_ROLES, so
# no command creates its key among the services' (its private half never sits beside theirs),
# and keel.toml cannot take the role away.
ADMIN_IDENTITY = "admin"
ADMIN_EVENTS = ("KeyAdded", "KeyRotated", "KeyRetired", "UnsignedHistoryAdopted", "TrustReset")
# Signed-by name of records a project wrote before it had keys and later adopted.
ADOPTED = "adopted unsigned history"
# Who may sign a review pack (`keel audit report`), unless keel.toml says otherwise with
# `[identities.NAME] sign_reports = true|false`: the audit identity, which already attests the
# log; never a service such as `serve`, whose key a stolen-service-key attacker may hold.
DEFAULT_REPORT_SIGNERS: tuple[str, ...] = ("audit",)


def key_id(public: bytes) -> str:
    return hashlib.sha256(public).hexdigest()[:16]


def keyring_digest(
    keys: Iterable[PublicKey], adopted: Mapping[tuple[str, int], tuple[int, str]]
) -> str:
    """SHA-256 over one sorted line per key (id, identity, public, status) and per adopted
    tree: equal keyrings give equal digests whatever order or file they came from. Creation
    times are left out: the file's and the event's clocks may differ by a tick."""
    lines = sorted(
        f"key {k.id} {k.identity} {base64.b64encode(k.public).decode()} {k.status}\n" for k in keys
    ) + sorted(f"adopted {t}/{p} {n} {root}\n" for (t, p), (n, root) in adopted.items())
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class PublicKey:
    identity: str
    id: str
    public: bytes  # raw 32-byte Ed25519 public key
    status: str = "active"  # active | retired (still verifies) | revoked (never verifies)
    created: str = ""


@dataclass(frozen=True)
class Verdict:
    identity: str | None
    problem: str | None  # None: signed by a valid key of an identity allowed to write the type


class Trust:
    """The public side: keys and roles. `check` answers for one stored event.

    `adopted`: per tree (topic, partition), the leading records the admin adopted as unsigned
    history, (size, hex root, end offset); `admit` accepts an unsigned record below the end
    offset (log offsets are not leaf indexes on either backend; verify checks both)."""

    def __init__(
        self,
        keys: Iterable[PublicKey] = (),
        roles: Mapping[str, Iterable[str]] | None = None,
        adopted: Mapping[tuple[str, int], tuple[int, str, int]] | None = None,
        report_signers: Iterable[str] = DEFAULT_REPORT_SIGNERS,
    ) -> None:
        self.keys = {k.id: k for k in keys}
        self.roles = {n: frozenset(t) for n, t in (roles or DEFAULT_ROLES).items()}
        self.roles[ADMIN_IDENTITY] = frozenset(ADMIN_EVENTS)
        self.adopted = dict(adopted or {})
        self.report_signers = frozenset(report_signers)
        self._verified: dict[bytes, tuple[str, str, int, bytes]] = {}
        # signature -> (record head, identity, chunk size, root) of chunks checked in full
        self._chunks: dict[bytes, tuple[bytes, str, int, bytes]] = {}
        self._roles_seen: dict[tuple[str, str | None], Verdict] = {}

    @property
    def enabled(self) -> bool:
        return bool(self.keys)

    def active_key(self, identity: str) -> PublicKey | None:
        active = [k for k in self.keys.values() if k.identity == identity and k.status == "active"]
        return max(active, key=lambda k: k.created) if active else None

    def admit(self, tp: tuple[str, int], offset: int, verdict: Verdict) -> Verdict:
        """`verdict` on the record at (tp, offset), except that an unsigned record inside an
        adopted prefix is accepted as adopted history."""
        if verdict.problem == "unsigned" and offset < self.adopted.get(tp, (0, "", 0))[2]:
            return Verdict(ADOPTED, None)
        return verdict

    def digest(self) -> str:
        """What a checkpoint commits to (its `keyring` line): keys and adoptions, canonical."""
        return keyring_digest(self.keys.values(), {tp: a[:2] for tp, a in self.adopted.items()})

    def may_emit(self, identity: str, event_type: str) -> bool:
        allowed = self.roles.get(identity, frozenset())
        return event_type in allowed or "*" in allowed

    def check(self, value: bytes, sig: bytes | None, event_type: str | None) -> Verdict:
        if not sig:
            return Verdict(None, "unsigned")
        fast = self._in_known_chunk(value, sig)
        if fast is not None:
            return self._role(fast, event_type)
        try:
            s = decode(sig)
        except ValueError as exc:
            return Verdict(None, f"malformed signature ({exc})")
        key = self._key_of(s)
        if isinstance(key, Verdict):
            return key
        chunk_root = merkle.root_from_inclusion(s.index, s.size, merkle.leaf_hash(value), s.path)
        if chunk_root is None:
            return Verdict(s.identity, "bad signature (inclusion path does not fit the chunk)")
        if not self._signs(s, key, chunk_root):
            return Verdict(s.identity, "bad signature (the event or its signature was altered)")
        self._chunks[s.signature] = (_head(sig), s.identity, s.size, chunk_root)
        return self._role(s.identity, event_type)

    def _in_known_chunk(self, value: bytes, sig: bytes) -> str | None:
        """The identity, when `sig` is another event's record of a chunk already verified
        and its path leads from `value` to that chunk's root: no parsing into objects, no key
        lookups (~2x cheaper than the first event's check). None: check it in full."""
        known = self._chunks.get(sig[-64:])
        if known is None:
            return None
        head, identity, size, chunk_root = known
        n = len(head)
        if not sig.startswith(head) or len(sig) < n + 3 + 64:
            return None
        index, depth = _INDEX.unpack_from(sig, n)
        if len(sig) != n + 3 + 32 * depth + 64:
            return None
        path = [sig[i : i + 32] for i in range(n + 3, n + 3 + 32 * depth, 32)]
        got = merkle.root_from_inclusion(index, size, merkle.leaf_hash(value), path)
        return identity if got == chunk_root else None

    def check_many(self, items: Sequence[tuple[bytes, bytes | None, str | None]]) -> list[Verdict]:
        """`check` of each (value, signature record, event type), in one pass: a chunk whose
        every event is among `items` is checked as a whole (its tree built once from all its
        leaves, each event's record compared with what the signer wrote for it), ~3x cheaper
        per event than walking each path; anything else is checked alone. Same verdicts."""
        by_signature: dict[bytes, list[int]] = {}
        for i, (_, sig, _) in enumerate(items):
            if sig and len(sig) > 64:
                by_signature.setdefault(sig[-64:], []).append(i)
        out: list[Verdict | None] = [None] * len(items)
        for members in by_signature.values():
            identity = self._whole_chunk(items, members)
            if identity is not None:
                for i in members:
                    out[i] = self._role(identity, items[i][2])
        return [v if v is not None else self.check(*items[i]) for i, v in enumerate(out)]

    def _whole_chunk(
        self, items: Sequence[tuple[bytes, bytes | None, str | None]], members: list[int]
    ) -> str | None:
        """The signing identity when `members` are exactly one whole, validly signed chunk
        with every record as its signer wrote it; None: check them one by one."""
        first = items[members[0]][1] or b""
        try:
            s = decode(first)
        except ValueError:
            return None
        if len(members) != s.size:
            return None
        head = _head(first)
        by_index: dict[int, tuple[bytes, bytes]] = {}
        for i in members:
            value, sig = items[i][0], items[i][1] or b""
            index = int.from_bytes(sig[len(head) : len(head) + 2], "big")
            if not sig.startswith(head) or index >= s.size or index in by_index:
                return None
            by_index[index] = (value, sig)
        ordered = [by_index[j] for j in range(s.size)]  # all there: size distinct indices < size
        chunk_root, paths = merkle.tree_paths([merkle.leaf_hash(value) for value, _ in ordered])
        for index, (_, sig) in enumerate(ordered):
            path = paths[index]
            if sig != b"".join((head, _INDEX.pack(index, len(path)), *path, s.signature)):
                return None
        key = self._key_of(s)
        if isinstance(key, Verdict) or not self._signs(s, key, chunk_root):
            return None
        return s.identity

    def _key_of(self, s: _Sig) -> PublicKey | Verdict:
        """The public key a record names, or the verdict on why it cannot speak for it."""
        key = self.keys.get(s.key_id)
        if key is None:
            return Verdict(s.identity, f"signed with key {s.key_id}, which keys.toml does not list")
        if key.identity != s.identity:
            return Verdict(s.identity, f"key {s.key_id} belongs to {key.identity!r}")
        if key.status == "revoked":
            return Verdict(s.identity, f"key {s.key_id} of {s.identity!r} is revoked")
        return key

    def _signs(self, s: _Sig, key: PublicKey, chunk_root: bytes) -> bool:
        """Whether s.signature signs (identity, key, size, chunk_root) with `key`.

        One Ed25519 verification per chunk: a signature seen before is known to sign exactly
        (identity, key, size, root); another event of the chunk must lead to the same root."""
        signed = (s.identity, s.key_id, s.size, chunk_root)
        known = self._verified.get(s.signature)
        if known is None:
            message = _message(s.identity, s.key_id, s.size, chunk_root)
            if _verify(key.public, s.signature, message):
                self._verified[s.signature] = signed
                known = signed
        return known == signed

    def _role(self, identity: str, event_type: str | None) -> Verdict:
        verdict = self._roles_seen.get((identity, event_type))
        if verdict is None:
            if event_type is not None and not self.may_emit(identity, event_type):
                verdict = Verdict(identity, f"{identity!r} may not write {event_type}")
            else:
                verdict = Verdict(identity, None)
            self._roles_seen[(identity, event_type)] = verdict  # verdicts are immutable
        return verdict


@dataclass(frozen=True)
class _Sig:
    identity: str
    key_id: str
    size: int
    index: int
    path: list[bytes]
    signature: bytes


_HEADER = struct.Struct(">HHB")
_INDEX = struct.Struct(">HB")  # index in the chunk, path length


def _head(blob: bytes) -> bytes:
    """What every record of one chunk starts with: magic, identity, key ID, chunk size."""
    return blob[: 4 + blob[3] + 10]


def encode(s: _Sig) -> bytes:
    ident = s.identity.encode()
    return b"".join(
        (
            _MAGIC,
            struct.pack(">B", len(ident)),
            ident,
            bytes.fromhex(s.key_id),
            struct.pack(">H", s.size),
            _INDEX.pack(s.index, len(s.path)),
            *s.path,
            s.signature,
        )
    )


def decode(blob: bytes) -> _Sig:
    if blob[:3] != _MAGIC:
        raise ValueError("not a Keel signature record")
    try:
        pos = 4 + blob[3]
        size, index, depth = _HEADER.unpack_from(blob, pos + 8)
        identity = blob[4:pos].decode()
    except (IndexError, struct.error, UnicodeDecodeError) as exc:
        raise ValueError("truncated") from exc
    start = pos + 8 + _HEADER.size
    if len(blob) != start + 32 * depth + 64:
        raise ValueError("truncated")
    path = [blob[i : i + 32] for i in range(start, start + 32 * depth, 32)]
    return _Sig(identity, blob[pos : pos + 8].hex(), size, index, path, blob[-64:])


def _message(identity: str, kid: str, size: int, chunk_root: bytes) -> bytes:
    return b"".join(
        (_CONTEXT, identity.encode(), b"\n", kid.encode(), b"\n", b"%d\n" % size, chunk_root)
    )


def _verify(public: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except InvalidSignature:
        return False
    return True


# -- the private side ----------------------------------------------------------------------
@dataclass
class Signer:
    """Signs outgoing event bytes with the private keys available to this process.

    `identity` fixes who signs (a person: KEEL_IDENTITY); otherwise each event is signed by the
    identity of the service that produced it (its envelope's producer.service)."""

    trust: Trust
    private: Mapping[str, Any] = field(default_factory=dict)  # key ID -> Ed25519PrivateKey
    identity: str | None = None

    @property
    def enabled(self) -> bool:
        return self.trust.enabled

    def sign(self, items: Sequence[tuple[str, str, bytes]]) -> list[bytes | None]:
        """items: (producing service, event type, encoded bytes). Returns one signature record
        per item, or Nones when the project declares no keys (unsigned mode)."""
        if not self.enabled:
            return [None] * len(items)
        groups: dict[str, list[int]] = {}
        for i, (service, event_type, _) in enumerate(items):
            who = self.identity or service
            if not self.trust.may_emit(who, event_type):
                raise KeelError(
                    f"identity {who!r} may not write {event_type}",
                    hint="declare the role in keel.toml, e.g. "
                    f'[identities.{who}] emits = ["{event_type}"], or act as an identity that '
                    "has it (KEEL_IDENTITY)",
                )
            groups.setdefault(who, []).append(i)
        out: list[bytes | None] = [None] * len(items)
        for who, idx in groups.items():
            kid, private = self._key(who)
            for start in range(0, len(idx), SIGN_CHUNK):
                chunk = idx[start : start + SIGN_CHUNK]
                leaves = [merkle.leaf_hash(items[i][2]) for i in chunk]
                chunk_root, paths = merkle.tree_paths(leaves)
                signature = private.sign(_message(who, kid, len(chunk), chunk_root))
                for j, i in enumerate(chunk):
                    out[i] = encode(_Sig(who, kid, len(chunk), j, paths[j], signature))
        return out

    def can_sign(self, identity: str) -> bool:
        """This process holds the private half of the identity's active key."""
        key = self.trust.active_key(identity)
        return key is not None and key.id in self.private

    def sign_note(self, identity: str, text: bytes) -> tuple[PublicKey, bytes]:
        """A plain Ed25519 signature (checkpoints); returns the key used and the signature."""
        kid, private = self._key(identity)
        return self.trust.keys[kid], private.sign(text)

    def _key(self, identity: str) -> tuple[str, Any]:
        key = self.trust.active_key(identity)
        if key is None:
            raise KeelError(
                f"keys.toml lists no active key for identity {identity!r}",
                hint=f"create one: `keel keys create {identity}`",
            )
        private = self.private.get(key.id)
        if private is None:
            raise KeelError(
                f"the private key {key.id} of {identity!r} is not available to this process",
                hint="set KEEL_KEYS_DIR to the directory holding "
                f"{identity}.{key.id}.key (created by `keel keys create {identity}`)",
            )
        return key.id, private


# -- files ---------------------------------------------------------------------------------
def default_keys_dir() -> Path:
    """KEEL_KEYS_DIR (keel.settings), else ~/.config/keel/keys."""
    from keel.settings import Settings

    return Settings().private_keys_dir()


def default_admin_dir() -> Path:
    """The admin's private key: a person's, reused across projects, apart from the services'
    keys (they load every key in KEEL_KEYS_DIR) and never in KEEL_HOME."""
    from keel.settings import Settings

    return Settings().admin_keys_dir()


def admin_key(admin_dir: Path, create: bool = True) -> tuple[PublicKey, Any] | None:
    """(public key, private key) of the admin identity in admin_dir, made there (0600) when
    none exists and `create`; None when none exists and not `create`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    def found() -> list[Path]:
        return sorted(admin_dir.glob(f"{ADMIN_IDENTITY}.*.key")) if admin_dir.is_dir() else []

    if not found() and not create:
        return None
    if not found():
        # looked for again under the directory's lock: processes started together on a new
        # home each found none and each made one (the trail then refused all but one as forged)
        with admin_lock(admin_dir):
            if not found():
                _write_admin_key(admin_dir, Ed25519PrivateKey.generate())
    private: Any = load_pem_private_key(found()[-1].read_bytes(), None)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    return PublicKey(ADMIN_IDENTITY, key_id(public), public, "active", now), private


def admin_lock(admin_dir: Path) -> AbstractContextManager[None]:
    """The admin directory's lock: held while its key is made, and by whoever records the
    keyring with it (keel.keyring_admin), so one process at a time writes as the admin."""
    from keel import dirlock

    return dirlock.held(admin_dir, "admin.lock", "writing with the admin key")


def _write_admin_key(admin_dir: Path, private: Any) -> None:
    """The key's file appears whole or not at all (written aside, then renamed): a reader
    that does not take the lock never parses half a PEM."""
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    raw = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    path = admin_dir / f"{ADMIN_IDENTITY}.{key_id(raw)}.key"
    part = admin_dir / f".{path.name}.partial"
    part.unlink(missing_ok=True)  # left by a process killed while writing it
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        f.flush()
        os.fsync(f.fileno())
    os.rename(part, path)


def load_trust(keys_file: Path, project_file: Path | None = None) -> Trust:
    """keys.toml (public keys) and the roles from keel.toml's [identities] (or the defaults)."""
    roles: dict[str, tuple[str, ...]] = dict(DEFAULT_ROLES)
    signers = set(DEFAULT_REPORT_SIGNERS)
    if project_file is not None and project_file.exists():
        try:
            data = tomllib.loads(project_file.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{project_file} is not valid TOML: {exc}") from exc
        for name, spec in (data.get("identities") or {}).items():
            # an identity declared only to sign reports keeps the event types it writes
            if "emits" in spec or name not in roles:
                roles[name] = tuple(spec.get("emits", ()))
            if "sign_reports" in spec:
                (signers.add if spec["sign_reports"] is True else signers.discard)(name)
    if not keys_file.exists():
        return Trust((), roles, report_signers=signers)
    try:
        data = tomllib.loads(keys_file.read_text(encoding="utf-8"))
        keys = [
            PublicKey(
                identity=k["identity"],
                id=k["id"],
                public=base64.b64decode(k["public"], validate=True),
                status=k.get("status", "active"),
                created=k.get("created", ""),
            )
            for k in data.get("keys", [])
        ]
        adopted = {
            (a["topic"], int(a["partition"])): (int(a["size"]), str(a["root"]), int(a["end"]))
            for a in data.get("adopted", [])
        }
    except (tomllib.TOMLDecodeError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"{keys_file} is not a valid key list: {exc}",
            hint="it is written by `keel keys create`; restore it from version control",
        ) from exc
    for k in keys:
        if key_id(k.public) != k.id or k.status not in ("active", "retired", "revoked"):
            raise ConfigError(f"{keys_file}: key {k.id} of {k.identity!r} is inconsistent")
    return Trust(keys, roles, adopted, signers)


class PrivateKeys(Mapping[str, Any]):
    """The private key files (`IDENTITY.KEYID.key`, PEM) of a directory, by key ID, each read
    and parsed when first used. Every process bootstraps its signer, but most (the queries)
    never sign: loading the keys up front cost them the cryptography binding (~30 ms)."""

    def __init__(self, paths: Mapping[str, Path]) -> None:
        self._paths = dict(paths)
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, kid: str) -> Any:
        if kid not in self._loaded:
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            self._loaded[kid] = load_pem_private_key(self._paths[kid].read_bytes(), None)
        return self._loaded[kid]

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def __contains__(self, kid: object) -> bool:
        return kid in self._paths


def load_private(keys_dir: Path) -> PrivateKeys:
    """Every private key file (`IDENTITY.KEYID.key`, PEM) in keys_dir, by key ID (parsed on
    first use: see PrivateKeys)."""
    if not keys_dir.is_dir():
        return PrivateKeys({})
    return PrivateKeys({p.stem.rsplit(".", 1)[-1]: p for p in sorted(keys_dir.glob("*.key"))})


def replacing(keys: Iterable[PublicKey], key: PublicKey) -> list[PublicKey]:
    """`keys` with `key` added as its identity's one active key: the active one before it is
    retired (the trail says so), never dropped, so what it signed still verifies."""
    kept = [
        PublicKey(k.identity, k.id, k.public, "retired", k.created)
        if k.identity == key.identity and k.status == "active"
        else k
        for k in keys
    ]
    return [*kept, key]


def create_key(identity: str, keys_file: Path, keys_dir: Path) -> PublicKey:
    """A new active key for `identity`; its previous active key becomes retired (rotation:
    events it signed stay valid). Writes the private key (0600) and updates keys.toml under
    its lock (`keys_lock`), so keys added at once by several processes are all kept."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    if not identity.replace("-", "").replace("_", "").isalnum():
        raise KeelError(f"identity {identity!r} must be letters, digits, - and _")
    load_trust(keys_file)  # a broken keys.toml is refused before a key file is made
    private = Ed25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    key = PublicKey(identity, key_id(public), public, "active", now)
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = keys_dir / f"{identity}.{key.id}.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    try:
        with keys_lock(keys_file):
            trust = load_trust(keys_file)
            write_keys(keys_file, replacing(trust.keys.values(), key), trust.adopted)
    except BaseException:
        path.unlink()  # a private key keys.toml never listed would only mislead
        raise
    return key


# Seconds a keys.toml change waits for another: a holder only rereads and rewrites one small
# file, so a wait this long means it is stuck, not busy.
KEYS_LOCK_TIMEOUT = 60.0


def keys_lock(keys_file: Path, timeout: float = KEYS_LOCK_TIMEOUT) -> AbstractContextManager[None]:
    """keys.toml's lock, held by whoever reads, changes and writes it back (`keel keys create`
    and `retire`, `keel init`, the admin key and adoptions of keel.keyring_admin): without it
    two processes that read the file before either wrote it each wrote back their own change
    alone, and the last writer's file won.

    Its scope is the file, not the admin directory: the lock sits beside keys.toml
    (.keys.toml.lock), because keys.toml is the project's while the admin directory is a
    person's, shared by their projects (a lock there would make every project's `keel keys
    create` wait on any project's `keel keys adopt`, which holds the admin lock through a scan
    of the whole log) and not shared by two people changing one project's keys. Order: the
    admin lock, when both are held, is taken first (keyring_admin); nothing takes it while
    holding this one. Readers take no lock: write_keys replaces the file whole."""
    from keel import dirlock

    return dirlock.held(
        keys_file.parent, f".{keys_file.name}.lock", f"writing {keys_file.name}", timeout
    )


def write_keys(
    keys_file: Path,
    keys: Sequence[PublicKey],
    adopted: Mapping[tuple[str, int], tuple[int, str, int]] | None = None,
) -> None:
    """keys.toml with `keys` and `adopted`, replaced whole. A change of the file's contents
    reads them under `keys_lock` and writes them back before letting go."""
    lines = [
        "# Public keys: which key speaks for which identity. Written by `keel keys create`;",
        "# review changes like code. status: active | retired (still verifies) | revoked.",
        "# The trail records every change, signed by the admin key: `keel audit verify` fails",
        "# where this file and the trail differ.",
    ]
    for k in keys:
        lines += [
            "",
            "[[keys]]",
            f'identity = "{k.identity}"',
            f'id = "{k.id}"',
            f'public = "{base64.b64encode(k.public).decode()}"',
            f'status = "{k.status}"',
            f'created = "{k.created}"',
        ]
    for (topic, partition), (size, root, end) in sorted((adopted or {}).items()):
        lines += [
            "",
            "[[adopted]]  # unsigned history vouched for by `keel keys adopt`",
            f'topic = "{topic}"',
            f"partition = {partition}",
            f"size = {size}",
            f'root = "{root}"',
            f"end = {end}  # the first log offset after them",
        ]
    # written aside under a name no other process uses, then renamed over the file: a reader
    # sees the old file or the new, never part of one (one shared temporary name let a writer
    # rename another's half-written file into place, and the other's rename then fail)
    tmp = keys_file.with_name(f".{keys_file.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, keys_file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
