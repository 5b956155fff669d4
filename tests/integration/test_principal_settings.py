"""A process's principal travels in its Settings (issue 35): bootstrap hands Settings.principal
to the log and the object store, so `keel service run NAME` and `keel serve` pass the service's
principal down instead of setting KEEL_PRINCIPAL in their own environment for the adapters to
read back. The environment's KEEL_PRINCIPAL (the test process's operator) is what a runtime
would have used before."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.bootstrap import bootstrap
from keel.log.kafka import KafkaEventLog, new_prefix
from keel.secure.credentials import secrets_for, split_address
from keel.settings import Settings

pytestmark = pytest.mark.integration


def test_the_log_and_the_object_store_run_as_the_settings_principal(
    kafka_bootstrap: str,
    s3_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = new_prefix()
    KafkaEventLog(kafka_bootstrap, prefix=prefix).close()  # topics and ACLs, as the operator
    for k, v in s3_env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("KEEL_PRINCIPAL", "operator")
    settings = Settings(
        home=tmp_path / "home",
        bus=f"kafka://{kafka_bootstrap}?prefix={prefix}",
        artifacts=f"s3://keel-test/{prefix.strip('.')}",
        principal="train",
    )
    with bootstrap(settings) as rt:
        assert getattr(rt.log, "principal", None) == "train"
        # the object store's client signs with train's keys from the stack's secrets
        secrets = secrets_for(*split_address(s3_env["AWS_ENDPOINT_URL"].split("://", 1)[1]))
        assert secrets is not None and secrets.has("s3", "train")
        store = rt.artifacts
        signed_as = store.s3._request_signer._credentials.access_key  # type: ignore[attr-defined]
        assert signed_as == secrets.s3("train")["aws_access_key_id"]
    # without a principal in the settings, the environment's still decides
    with bootstrap(settings.model_copy(update={"principal": ""})) as rt:
        assert getattr(rt.log, "principal", None) == "operator"
