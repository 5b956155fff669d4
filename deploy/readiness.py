"""When `up` may return: the broker answers, and Keel's topics and (secured) ACLs exist and
are visible to clients.

`keel topics check` right after `make up SERVICES=all` once reported 159 missing ACLs: the
services created them as they started, after `up` had returned, and a broker's authorizer sees
an ACL only once its metadata has caught up with the controller's. The launcher provisions the
declared table itself, as the operator, before any service starts, and waits until the broker
describes everything declared (bounded in attempts)."""

from __future__ import annotations

import time

from deploy.kafka_broker import Kafka
from deploy.processes import LaunchError


def provisioned(kafka: Kafka, attempts: int = 240, pause: float = 0.25) -> list[str]:
    """Create Keel's declared topics and ACLs on `kafka` (idempotent) and return what changed,
    once `keel topics check` would find no difference; LaunchError listing the differences if
    they remain after `attempts` reads."""
    from keel.log import provision
    from keel.log.kafka import DEFAULT_PREFIX
    from keel.secure.credentials import Secrets

    secrets = Secrets(kafka.secrets_root) if kafka.secure else None
    changes = provision.apply(kafka.bootstrap, DEFAULT_PREFIX, secrets)
    drifts: list[object] = []
    for _ in range(attempts):
        drifts = list(provision.check(kafka.bootstrap, DEFAULT_PREFIX, secrets))
        if not drifts:
            return changes
        time.sleep(pause)
    listed = "; ".join(str(d) for d in drifts[:5])
    raise LaunchError(
        f"Kafka on {kafka.bootstrap} still differs from Keel's declared topics and ACLs after "
        f"{attempts} reads ({len(drifts)} difference(s), e.g. {listed}): see "
        f"{kafka.root / 'logs'}, and `keel topics check` once the broker has settled"
    )
