"""The query fast path's settings (keel.quick_settings) agree with Settings: every text or path
field read the same way (defaults, empty values, lower-case names), and any variable Settings
would parse (a number, a flag, an unknown name, a name spelled twice) sends the caller to
Settings, so validation and its messages stay pydantic's."""

from __future__ import annotations

import os
import typing
from pathlib import Path

import pytest

from keel.quick_settings import OPTIONAL_PATHS, PATHS, TEXT, quick_settings
from keel.settings import Settings

pytestmark = pytest.mark.unit


def _kind(annotation: object) -> str:
    if annotation is str:
        return "text"
    if annotation is Path:
        return "path"
    if set(typing.get_args(annotation)) == {Path, type(None)}:
        return "optional path"
    return "parsed"


def test_the_fields_read_without_pydantic_are_exactly_settings_text_and_path_fields() -> None:
    # A new text or path field missing here only sends its users to Settings (slower, never
    # wrong); a field listed here whose type changed would be read wrongly: both fail here.
    kinds = {name: _kind(f.annotation) for name, f in Settings.model_fields.items()}
    fix = "list each text or path field of Settings in keel.quick_settings"
    assert {n for n, k in kinds.items() if k == "text"} == TEXT, fix
    assert {n for n, k in kinds.items() if k == "path"} == PATHS, fix
    assert {n for n, k in kinds.items() if k == "optional path"} == OPTIONAL_PATHS, fix


def _clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.lower().startswith("keel_"):
            monkeypatch.delenv(key)


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"KEEL_HOME": "/srv/keel", "KEEL_PROJECT": "/srv/p/keel.toml", "KEEL_BUS": ""},
        {"KEEL_HOME": "", "KEEL_PROJECT": "", "KEEL_TRUST": "", "KEEL_KEYS_DIR": ""},
        {"keel_home": "lower", "Keel_Views": "sqlite:///v.db", "KEEL_TRUST": "/k/keys.toml"},
        {"KEEL_ADMIN_DIR": "/a", "KEEL_SCHEMAS": "/s", "KEEL_ACTOR": "ann", "OTHER": "1"},
    ],
)
def test_each_field_is_read_as_settings_reads_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    _clean(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    quick = quick_settings(os.environ)
    real = Settings()
    assert quick is not None
    for name in TEXT:
        assert quick.text(name) == getattr(real, name), name
    for name in PATHS | OPTIONAL_PATHS:
        assert quick.path(name) == getattr(real, name), name
    assert (quick.home, quick.project) == (real.home, real.project)
    assert _outcome(quick.trust_file) == _outcome(real.trust_file)


def _outcome(f: typing.Callable[[], object]) -> object:
    try:
        return f()
    except ValueError as exc:  # KEEL_PROJECT="" is the directory ".": keys.toml has no place
        return str(exc)


@pytest.mark.parametrize(
    "env",
    [
        {"KEEL_LOCK_TIMEOUT": "abc"},  # Settings refuses it with pydantic's message
        {"KEEL_LOCK_TIMEOUT": "5"},
        {"KEEL_INLINE_SERVICES": "false"},
        {"KEEL_NOT_A_FIELD": "x"},  # ignored by Settings: the fast path does not guess
        {"KEEL_HOME": "a", "keel_home": "b"},  # which one wins is pydantic-settings' rule
    ],
)
def test_anything_settings_parses_is_left_to_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    _clean(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert quick_settings(os.environ) is None
