"""The library's client answers queries alone; commands need the application's (decision 0025):
a command asked of `keel.Client()` is refused with what to do, before anything is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.client import Client
from keel.errors import KeelError
from keel.settings import Settings
from keel.steps import step

pytestmark = pytest.mark.unit


def test_a_command_without_the_applications_commands_is_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, bus="", views="", project=tmp_path / "keel.toml")
    with Client(settings) as k, pytest.raises(KeelError) as err:
        k.ingest(tmp_path / "x.csv", "fam")
    assert "answers queries only" in str(err.value)
    assert err.value.hint and "application's Client" in err.value.hint
    assert not home.exists()  # refused before KEEL_HOME is made


def test_a_library_step_is_refused_before_any_work(tmp_path: Path) -> None:
    ran = []
    settings = Settings(home=tmp_path / "home", bus="", views="", project=tmp_path / "keel.toml")
    client = Client(settings)
    with (
        pytest.raises(KeelError, match="answers queries only"),
        step("s", family="fam", code_version="v1", client=client),
    ):
        ran.append(1)
    assert not ran
