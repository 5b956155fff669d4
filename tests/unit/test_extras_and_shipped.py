"""keel.extras says which extra to install; keel.shipped finds the schemas of a checkout and of an
install (issue 36)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.extras import MissingExtra, need
from keel.shipped import ShippedDataMissing, schema_dir

pytestmark = pytest.mark.unit


def test_need_passes_when_every_module_is_there() -> None:
    need("serve", "json", "sqlite3")


def test_need_names_the_extra_and_the_missing_modules() -> None:
    with pytest.raises(MissingExtra) as caught:
        need("kafka", "json", "no_such_module_keel_test")
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("pip install 'keel[kafka]'")
    assert "no_such_module_keel_test" in caught.value.hint and "json" not in caught.value.hint


def test_a_checkout_reads_its_own_schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_SCHEMAS", raising=False)
    package = tmp_path / "shared" / "keel"
    (tmp_path / "schemas" / "events").mkdir(parents=True)
    (package / "_schemas" / "events").mkdir(parents=True)  # a stale build copy is ignored
    assert schema_dir(package) == tmp_path / "schemas"


def test_an_install_reads_the_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEEL_SCHEMAS", raising=False)
    package = tmp_path / "site-packages" / "keel"
    (tmp_path / "schemas" / "events").mkdir(parents=True)  # lib/python3.11/schemas: not ours
    (package / "_schemas" / "events").mkdir(parents=True)
    assert schema_dir(package) == package / "_schemas"


def test_keel_schemas_overrides_and_a_missing_copy_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "site-packages" / "keel"
    package.mkdir(parents=True)
    monkeypatch.delenv("KEEL_SCHEMAS", raising=False)
    with pytest.raises(ShippedDataMissing, match="_schemas/events"):
        schema_dir(package)
    monkeypatch.setenv("KEEL_SCHEMAS", str(tmp_path / "mine"))
    assert schema_dir(package) == tmp_path / "mine"
