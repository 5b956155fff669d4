"""The declared ACL table (keel.secure.acl) on a real broker: create what is missing, report
drift both ways (missing bindings, and bindings on Keel's resources nobody declared)."""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from typing import Any

from keel.errors import KeelError
from keel.secure.acl import Binding, bindings

_RESOURCE = {"topic": "TOPIC", "group": "GROUP", "transactional_id": "TRANSACTIONAL_ID"}
_PATTERN = {"literal": "LITERAL", "prefixed": "PREFIXED"}
# How long a broker may take to put ACL changes in force before provisioning gives up (the
# test broker took 0.5-1.2 s, on an idle machine).
IN_FORCE_TIMEOUT = 30.0


def _to_kafka(b: Binding) -> Any:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return AclBinding(
        ResourceType[_RESOURCE[b.resource]],
        b.name,
        ResourcePatternType[_PATTERN[b.pattern]],
        f"User:{b.principal}",
        "*",
        AclOperation[b.operation.upper()],
        AclPermissionType.ALLOW,
    )


def _from_kafka(k: Any) -> Binding | str:
    """A Binding, or a description of an ACL no table entry can be (a DENY, a host, ...)."""
    kinds = {v: k_ for k_, v in _RESOURCE.items()}
    patterns = {v: k_ for k_, v in _PATTERN.items()}
    desc = (
        f"{k.principal} {k.permission_type.name} {k.operation.name} {k.restype.name} {k.name} "
        f"({k.resource_pattern_type.name}, host {k.host})"
    )
    if (
        k.permission_type.name != "ALLOW"
        or k.host != "*"
        or not k.principal.startswith("User:")
        or k.restype.name not in kinds
        or k.resource_pattern_type.name not in patterns
    ):
        return desc
    return Binding(
        k.principal[len("User:") :],
        kinds[k.restype.name],
        k.name,
        patterns[k.resource_pattern_type.name],
        k.operation.name.lower(),
    )


def _ours(name: str, prefix: str) -> bool:
    return name.startswith(prefix) or name.startswith(f"keel-{prefix}")


def existing(admin: Any, prefix: str) -> list[Binding | str]:
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    anything: Any = None  # the filter's "match any" (its stubs say str)
    everything = AclBindingFilter(
        ResourceType.ANY,
        anything,
        ResourcePatternType.ANY,
        anything,
        anything,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )
    found = admin.describe_acls(everything, request_timeout=30).result()
    return [_from_kafka(k) for k in found if _ours(k.name, prefix)]


def drift(admin: Any, prefix: str) -> tuple[list[Binding], list[Binding | str]]:
    """(declared but absent, present on Keel's resources but not declared)."""
    want = bindings(prefix)
    have = existing(admin, prefix)
    missing = sorted(want - {b for b in have if isinstance(b, Binding)})
    extra = [b for b in have if not isinstance(b, Binding) or b not in want]
    return missing, sorted(extra, key=str)


def apply(admin: Any, prefix: str) -> list[str]:
    """Create the declared bindings that are missing. Extra ones are reported by `check`, not
    deleted: an operator may have added them on purpose."""
    missing, _ = drift(admin, prefix)
    if not missing:
        return []
    futures = admin.create_acls([_to_kafka(b) for b in missing], request_timeout=30)
    failed = []
    for binding, fut in futures.items():
        try:
            fut.result()
        except Exception as exc:
            failed.append(f"{binding}: {exc}")
    if failed:
        raise KeelError(
            f"cannot create {len(failed)} ACL(s) on the broker: {'; '.join(failed[:3])}",
            hint="`keel topics apply` needs the operator principal (a super user of the broker)",
        )
    await_in_force(admin, prefix, present=missing)
    return [f"allowed {b}" for b in missing]


def pending(
    present: Collection[Binding], absent: Collection[Binding], have: Iterable[Binding | str]
) -> list[Binding]:
    """The changes the broker does not show yet: bindings wanted present and not listed, and
    bindings wanted absent and still listed."""
    shown = {b for b in have if isinstance(b, Binding)}
    return sorted({b for b in present if b not in shown} | {b for b in absent if b in shown})


def await_in_force(
    admin: Any,
    prefix: str,
    present: Collection[Binding] = (),
    absent: Collection[Binding] = (),
    timeout: float = IN_FORCE_TIMEOUT,
) -> None:
    """Return once the broker lists every binding of `present` and none of `absent`.

    Why: a KRaft broker answers CreateAcls/DeleteAcls once the controller has committed the
    change, and its authorizer applies it later, when it replays the metadata log (0.5-1.2 s
    on the test broker). A service producing in between is refused with
    TOPIC_AUTHORIZATION_FAILED, which no client retries. DescribeAcls is answered from that
    same authorizer, so once it lists the change, the broker asked enforces it (on a cluster
    of several brokers, the one the admin client asked)."""
    deadline = time.monotonic() + timeout
    while left := pending(present, absent, existing(admin, prefix)):
        if time.monotonic() >= deadline:
            raise KeelError(
                f"{len(left)} ACL change(s) on the broker not in force after {timeout:.0f} s "
                f"(first: {left[0]})",
                hint="the broker's metadata is behind: check its log for errors, then run "
                "`keel topics check` to see what is in force and `keel topics apply` again",
            )
        time.sleep(0.1)
