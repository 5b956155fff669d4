"""Configuration read through Settings (issue 35): the variables the library read on its own
(KEEL_KEYS_DIR, KEEL_ADMIN_DIR, KEEL_SECRETS, KEEL_PRINCIPAL, KEEL_SCHEMAS, KEEL_CHROMIUM,
KEEL_FOLD) keep their names and meanings, and a path variable set but empty means unset, as
each module's `os.environ.get(...) or default` did."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel import shipped, signing
from keel.errors import ConfigError
from keel.secure import credentials
from keel.settings import Settings

pytestmark = pytest.mark.unit


def test_empty_path_variables_mean_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("KEEL_KEYS_DIR", "KEEL_ADMIN_DIR", "KEEL_TRUST", "KEEL_WITNESS_DIR"):
        monkeypatch.setenv(var, "")
    s = Settings()
    assert s.private_keys_dir() == Path.home() / ".config" / "keel" / "keys"
    assert s.admin_keys_dir() == Path.home() / ".config" / "keel" / "admin"
    assert s.trust_file() == s.project.with_name("keys.toml")
    assert s.witness_dir is None
    assert signing.default_keys_dir() == s.private_keys_dir()


def test_the_library_reads_the_same_names_through_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KEEL_KEYS_DIR", str(tmp_path / "keys"))
    monkeypatch.setenv("KEEL_ADMIN_DIR", str(tmp_path / "admin"))
    monkeypatch.setenv("KEEL_PRINCIPAL", "serve")
    monkeypatch.setenv("KEEL_SCHEMAS", str(tmp_path / "schemas"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    assert signing.default_keys_dir() == tmp_path / "keys"
    assert signing.default_admin_dir() == tmp_path / "admin"
    assert credentials.process_principal() == "serve"
    assert shipped.schema_dir() == tmp_path / "schemas"
    assert credentials.clusters_dir() == tmp_path / "config" / "keel" / "clusters"
    monkeypatch.setenv("KEEL_SECRETS", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="KEEL_SECRETS"):
        credentials.secrets_for("127.0.0.1", 9092)
