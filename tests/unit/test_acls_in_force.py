"""keel.log.acls.pending: which ACL changes a broker's listing does not show yet (provisioning
waits on it: a KRaft broker applies ACLs a moment after it answers CreateAcls/DeleteAcls)."""

from __future__ import annotations

import pytest

from keel.log.acls import pending
from keel.secure.acl import Binding

pytestmark = pytest.mark.unit

WRITE = Binding("promote", "topic", "t1.registry", "literal", "write")
READ = Binding("promote", "topic", "t1.registry", "literal", "read")
SNEAKY = Binding("promote", "topic", "t1.deployments", "literal", "write")


def test_nothing_pending_once_the_listing_shows_every_change() -> None:
    assert pending([WRITE, READ], [SNEAKY], [READ, WRITE, "User:x DENY ALL (host *)"]) == []


def test_a_created_binding_not_listed_yet_is_pending() -> None:
    assert pending([WRITE, READ], [], [READ]) == [WRITE]


def test_a_deleted_binding_still_listed_is_pending() -> None:
    assert pending([], [SNEAKY], [WRITE, SNEAKY]) == [SNEAKY]


def test_a_description_no_binding_can_be_never_counts_as_one() -> None:
    assert pending([WRITE], [], [str(WRITE)]) == [WRITE]
