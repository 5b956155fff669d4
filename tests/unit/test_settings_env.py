"""Settings reads the environment as pydantic-settings' BaseSettings did (decision 0024: it is
a plain pydantic model now, ~35 ms less per command): the same values, the same precedence
(constructor over environment over defaults) and the same validation errors, checked against a
BaseSettings model with Settings' own fields and validators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from keel.settings import Settings

pytestmark = pytest.mark.unit


class _Base(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEEL_", extra="ignore")


def reference() -> type[BaseSettings]:
    """Settings' fields and validators on pydantic-settings, as the class used to be."""
    validators = {
        name: field_validator(*d.info.fields, mode=d.info.mode)(classmethod(d.func.__func__))  # type: ignore[attr-defined]
        for name, d in Settings.__pydantic_decorators__.field_validators.items()
    }
    fields: Any = {n: (f.annotation, f) for n, f in Settings.model_fields.items()}
    return create_model("Settings", __base__=_Base, __validators__=validators, **fields)


def outcome(cls: type, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs).model_dump()
    except ValidationError as exc:  # title, fields, messages and inputs
        return [(e["loc"], e["type"], e["msg"], e["input"]) for e in exc.errors()], exc.title


ENVS: list[dict[str, str]] = [
    {},
    {"KEEL_HOME": "/srv/keel", "KEEL_BUS": "kafka://h:9092", "KEEL_LOCK_TIMEOUT": "2.5"},
    {"keel_home": "lower", "Keel_Views": "redis://r:6379/0", "KEEL_INLINE_SERVICES": "false"},
    {"KEEL_INLINE_SERVICES": "no", "KEEL_TRUST": "", "KEEL_KEYS_DIR": "", "KEEL_SCHEMAS": "/s"},
    {"KEEL_HOME": "", "KEEL_PROJECT": "", "KEEL_WITNESS_DIR": "/w", "KEEL_NOT_A_FIELD": "x"},
    {"KEEL_LOCK_TIMEOUT": "abc"},
    {"KEEL_LOCK_TIMEOUT": "abc", "KEEL_INLINE_SERVICES": "maybe"},
    {"KEEL_LOCK_TIMEOUT": ""},
]


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.lower().startswith("keel_"):
            monkeypatch.delenv(key)
    return monkeypatch


@pytest.mark.parametrize("env", ENVS)
def test_the_environment_reads_as_with_base_settings(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    assert outcome(Settings) == outcome(reference())


@pytest.mark.parametrize("env", ENVS[:3])
def test_the_constructor_wins_over_the_environment(
    clean_env: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for key, value in env.items():
        clean_env.setenv(key, value)
    given = {"home": Path("/given"), "bus": "", "lock_timeout": "7", "unknown": 1}
    assert outcome(Settings, **given) == outcome(reference(), **given)
    assert Settings(**given).home == Path("/given")


def test_settings_import_no_pydantic_settings() -> None:
    code = "import sys, keel.settings; keel.settings.Settings(); print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert not {"pydantic_settings", "asyncio"} & set(out.stdout.split())
