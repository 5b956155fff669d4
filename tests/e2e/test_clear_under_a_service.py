"""Issue 35: `keel audit rebuild` and `keel keys adopt` drop the views and fold them again; with
a projector service running that dropped its lease too, so commands folded beside it, took its
writer identity and fenced it off. Both now refuse while the service holds the views, naming
it and saying what to do; the service keeps its lease and folds on. Real Kafka + Redis, a real
`keel service run projector`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_projector_lease import LEASE, _alive_after_appends
from tests.e2e.test_projector_service import OnKafka, _wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.faults]


@pytest.fixture
def stack(tmp_path: Path, kafka_bootstrap: str, redis_url: str) -> Iterator[OnKafka]:
    home = tmp_path / "home"
    home.mkdir()
    k = OnKafka(home, kafka_bootstrap, redis_url)
    yield k
    k.close()


def test_rebuild_and_adopt_refuse_while_a_projector_service_holds_the_views(
    stack: OnKafka,
) -> None:
    k = stack
    k.append(0, 50)
    proc = k.start()
    _wait_for(100 + k.base, k.views, proc)
    lease = (k.views.get(LEASE) or {}).get("holder")
    assert lease
    keyring = len(list(k.log.read(["keyring"])))

    for command, named in (
        (("audit", "rebuild", "--json"), "`keel audit rebuild`"),
        (("keys", "adopt", "--reason", "old history"), "`keel keys adopt`"),
    ):
        out = k.keel(*command)
        assert out.returncode != 0, out.stdout
        assert named in out.stderr and lease in out.stderr, out.stderr  # which service holds it
        assert "stop that projector service" in out.stderr  # and what to do
        assert (k.views.get(LEASE) or {}).get("holder") == lease  # the lease is kept
    assert len(list(k.log.read(["keyring"]))) == keyring  # nothing adopted, nothing recorded

    _alive_after_appends(k, proc, 50, 150, 300 + k.base)  # the service folds on, unfenced
    _out, err = k.stop(proc)
    assert "took over" not in err
    k.assert_verified(300)  # 150 steps, two events each
