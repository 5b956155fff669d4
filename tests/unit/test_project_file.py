"""Where keel.toml is read from: a directory means its keel.toml; an unreadable path is one
ConfigError with a hint, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from keel.errors import ConfigError
from keel.project import load_project

pytestmark = pytest.mark.unit
DEMO = Path(__file__).resolve().parents[2] / "services" / "entrypoints" / "demo" / "keel.toml"


def test_a_directory_means_its_keel_toml(tmp_path: Path) -> None:
    (tmp_path / "keel.toml").write_text(DEMO.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_project(tmp_path).families == load_project(tmp_path / "keel.toml").families


def test_a_directory_without_one_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no project file at .*keel\.toml"):
        load_project(tmp_path)


def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "keel.toml"
    bad.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError, match="cannot read the project file") as err:
        load_project(bad)
    assert err.value.hint and "KEEL_PROJECT" in err.value.hint
