"""Settings from the environment (KEEL_*), built once by the bootstrap and passed down.

This is the one module that reads the environment (tests/unit/test_architecture.py checks it):
a variable read anywhere else would be missing from the generated configuration reference and
could not be set the way every other one is. Code that runs before a bootstrap (key files, the
stack's secrets, the schema files) builds a `Settings()` of its own, which reads the same names.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from keel.errors import HomeError

_warned_unknown = False  # the unknown-actor warning, once per process


ENV_PREFIX = "KEEL_"  # each field's variable: KEEL_ + its name, in any case


def environment_values(names: Any) -> dict[str, str]:
    """The KEEL_* variables naming a field, as pydantic-settings reads them (case-insensitive;
    of two spellings of one name the later one wins; values as given, for the fields to
    validate: none of Settings' fields is a list or a model that would be read as JSON)."""
    env = {k.lower(): v for k, v in os.environ.items()}
    prefix = ENV_PREFIX.lower()
    return {n: env[prefix + n] for n in names if prefix + n in env}


class Settings(BaseModel):
    """KEEL_HOME holds the embedded log, views and artifacts; KEEL_BUS / KEEL_VIEWS pick backends.

    Empty KEEL_BUS / KEEL_VIEWS mean the embedded SQLite files inside KEEL_HOME.

    Values given to the constructor win over the environment, the environment over defaults,
    and a bad value is pydantic's ValidationError, as with pydantic-settings' BaseSettings,
    which this class replaced because importing it cost every command ~35 ms (decision 0024;
    tests/unit/test_settings_env.py checks both read every variable alike).
    """

    model_config = ConfigDict(extra="ignore", validate_default=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**environment_values(type(self).model_fields), **values})

    # KEEL_HOME: the embedded log (log.db), views (views.db) and artifacts/ of one home.
    home: Path = Path(".keel")
    # KEEL_BUS: the event log; empty = sqlite:///$KEEL_HOME/log.db; kafka://host:port[?prefix=keel.]
    bus: str = ""
    # KEEL_VIEWS: the read model; empty = sqlite:///$KEEL_HOME/views.db; redis://host:port/db
    views: str = ""
    # KEEL_ARTIFACTS: empty = KEEL_HOME/artifacts; s3://bucket/prefix = an S3-compatible store
    # (endpoint and credentials from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
    artifacts: str = ""
    # KEEL_OPENLINEAGE: file:PATH, stdout or http(s)://host:port (Marquez): every process sends
    # the OpenLineage run events of what it records (keel.openlineage); empty: off
    openlineage: str = ""
    # KEEL_ACTOR: who is recorded as acting; empty = $USER, else KEEL_IDENTITY, else "unknown".
    actor: str = ""
    # True: commands run the event-driven services (promote, deploy) in their own process.
    # Set KEEL_INLINE_SERVICES=false when `keel service run` processes do that job instead.
    inline_services: bool = True
    # Trust (keel.signing): the project's keel.toml and the public keys beside it (keys.toml,
    # or KEEL_TRUST); private keys from KEEL_KEYS_DIR, never from the home or the repo;
    # KEEL_IDENTITY signs as a person instead of as the producing service.

    # KEEL_PROJECT: the project file (families, contracts, policies, identities).
    project: Path = Path("keel.toml")
    # KEEL_TRUST: the public keys, the trust anchor; unset = keys.toml beside KEEL_PROJECT.
    trust: Path | None = None
    # KEEL_KEYS_DIR: private signing keys; unset = ~/.config/keel/keys.
    keys_dir: Path | None = None
    # KEEL_IDENTITY: sign as this person (a role in keel.toml), not as the service.
    identity: str = ""
    # Seconds a write waits for another writer's lock on the embedded log before it gives up
    # with a clear error (KEEL_LOCK_TIMEOUT).
    lock_timeout: float = 30.0
    # The default local witness (decision 0023): the last checkpoint of each home, kept outside
    # KEEL_HOME so whoever can rewrite the home cannot also rewind it. KEEL_WITNESS_DIR; empty:
    # $XDG_STATE_HOME/keel/witness, else ~/.local/state/keel/witness.
    witness_dir: Path | None = None
    # KEEL_API_TOKENS: the audit API's scoped tokens (keel.secure.tokens), hashed; default
    # api-tokens.json beside the private keys, never in the home: an act token may make the
    # server sign as its person, so whoever can write the home must not be able to mint one.
    api_tokens: Path | None = None
    # KEEL_ADMIN_DIR: the admin's private key (a person's, signs the keyring and trust resets),
    # apart from the services' keys and never in the home; unset = ~/.config/keel/admin.
    admin_dir: Path | None = None
    # KEEL_SECRETS: a secured stack's secrets directory (ca.pem, kafka/, redis/, s3/); unset =
    # the one `keel up` linked for the server's address under $XDG_CONFIG_HOME/keel/clusters.
    secrets: Path | None = None
    # KEEL_PRINCIPAL: who this process is to Kafka, Redis and S3 on a secured stack; unset = the
    # service `keel service run` / `keel serve` runs, else a person's principal (cli).
    principal: str = ""
    # KEEL_SCHEMAS: the schemas/ directory to read event schemas and the demo's contracts from;
    # unset = the checkout's schemas/, else the copy installed with the library.
    schemas: Path | None = None
    # KEEL_CHROMIUM: the Chromium binary that prints review packs as PDF; unset = the first of
    # chromium, chromium-browser, google-chrome on PATH.
    chromium: str = ""
    # KEEL_API_TOKEN: the audit API token a service process (serve, the MLflow bridge) presents
    # to the audit API; unset = none (an open API).
    api_token: str = ""
    # KEEL_MLFLOW_WEBHOOK_SECRET: the HMAC secret MLflow signs its registry webhooks with
    # (`keel service run mlflow-bridge`); the bridge refuses to start without it.
    mlflow_webhook_secret: str = ""
    # KEEL_FOLD: which fold core the projector runs: python, native (the keel_fold extension)
    # or auto (native where it imports); unset = auto.
    fold: str = ""
    # KEEL_REBUILD_MEMORY_MB: what `keel audit rebuild` / `keel keys adopt` may hold in memory
    # (MiB, estimated) while folding SQLite views afresh; past it the views held spill into a
    # file beside them and the fold goes on (decision 0034). A 1M-event home holds ~1.4 GiB.
    rebuild_memory_mb: int = 4096
    # KEEL_FOLD_PREFETCH: a fold catching up reads its next batch from the log on a second
    # thread while it folds the current one (keel.audit.prefetch); 0 = read on the fold's thread.
    fold_prefetch: bool = True

    @field_validator(
        "trust",
        "keys_dir",
        "witness_dir",
        "api_tokens",
        "admin_dir",
        "secrets",
        "schemas",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # KEEL_KEYS_DIR= (set but empty) meant "the default" when each module read os.environ
        # with `or`; Path("") would be the working directory instead.
        return None if value == "" else value

    def bus_url(self) -> str:
        return self.bus or f"sqlite:///{self.home / 'log.db'}"

    def views_url(self) -> str:
        return self.views or f"sqlite:///{self.home / 'views.db'}"

    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    def witness_root(self) -> Path:
        if self.witness_dir is not None:
            return self.witness_dir
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "keel" / "witness"

    def log_locator(self) -> str:
        """Where this home's log lives, as a witness names it: an embedded log by its file."""
        url = self.bus_url()
        if url.startswith("sqlite:///"):
            return "sqlite:///" + str(Path(url[len("sqlite:///") :]).resolve())
        return url

    def trust_file(self) -> Path:
        return self.trust or self.project.with_name("keys.toml")

    def private_keys_dir(self) -> Path:
        return self.keys_dir or Path.home() / ".config" / "keel" / "keys"

    def admin_keys_dir(self) -> Path:
        return self.admin_dir or Path.home() / ".config" / "keel" / "admin"

    def clusters_dir(self) -> Path:
        """Where `keel up` links each stack's secrets, by server address ($XDG_CONFIG_HOME's
        keel/clusters, the XDG convention: read here, like XDG_STATE_HOME)."""
        config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(config) / "keel" / "clusters"

    @staticmethod
    def s3_endpoint() -> str:
        """AWS_ENDPOINT_URL: boto3's own variable (boto3 reads it too); Keel reads it to find the
        stack's secrets and CA for that address."""
        return os.environ.get("AWS_ENDPOINT_URL", "")

    def api_tokens_file(self) -> Path:
        return self.api_tokens or self.private_keys_dir() / "api-tokens.json"

    def who(self) -> str:
        """Who acts, as recorded on every event: KEEL_ACTOR, else $USER, else KEEL_IDENTITY.
        With none of them the record says "unknown", and stderr says so once per process:
        an audit trail that cannot name anyone should not look as if it did."""
        found = self.actor or os.environ.get("USER") or self.identity
        if found:
            return found
        global _warned_unknown
        if not _warned_unknown:
            _warned_unknown = True
            sys.stderr.write(
                'warning: the actor is "unknown" ($USER, KEEL_ACTOR and KEEL_IDENTITY are '
                "unset): set KEEL_ACTOR=<your name> (or KEEL_IDENTITY) to record who acts\n"
            )
        return "unknown"


def ensure_home(home: Path, create: bool) -> Path:
    """Check KEEL_HOME is a writable directory; create it when `create` (write commands).

    Read-only commands pass create=False, so a mistyped KEEL_HOME is reported instead of being
    silently created empty.
    """
    if not home.exists():
        if not create:
            raise HomeError(
                f"KEEL_HOME {home} does not exist",
                hint="set KEEL_HOME to an existing Keel home, or run a command that records "
                "something (e.g. `keel demo`, `keel artifacts put`) to create it",
            )
        try:
            home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise HomeError(
                f"cannot create KEEL_HOME {home}: {exc.strerror or exc}",
                hint="set KEEL_HOME to a directory you can write, e.g. KEEL_HOME=$HOME/.keel",
            ) from exc
    if not home.is_dir():
        raise HomeError(
            f"KEEL_HOME {home} is not a directory",
            hint="point KEEL_HOME at a directory (it holds log.db, views.db and artifacts/)",
        )
    if create:
        try:
            with tempfile.NamedTemporaryFile(dir=home, prefix=".probe-"):
                pass
        except OSError as exc:
            raise HomeError(
                f"KEEL_HOME {home} is not writable: {exc.strerror or exc}",
                hint="fix its permissions or set KEEL_HOME to a directory you can write",
            ) from exc
    return home
