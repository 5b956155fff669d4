"""The composition root's container (keel_services.entrypoints.container, issue 35): one
runtime per command, opened on first use, shared by its reads, projector and clients, and
closed with it; a command refused before it needs the runtime makes no KEEL_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel.errors import KeelError
from keel.settings import Settings
from keel_services.entrypoints.container import App, build

pytestmark = pytest.mark.integration


def test_one_runtime_serves_the_reads_the_projector_and_the_clients(tmp_path: Path) -> None:
    with build(Settings(home=tmp_path / "home")) as app:
        assert app._rt is None  # nothing opened until asked for
        assert app.reads.families() == []
        rt = app.rt
        assert app.client().rt is rt and app.reads is app.reads
        assert app.projector(checkpoints="none").run().applied == 0
        assert app.client().families() == app.reads.families()
    assert app._rt is None  # closed with the container
    assert (tmp_path / "home").is_dir()


def test_a_read_only_container_refuses_a_missing_home(tmp_path: Path) -> None:
    with build(Settings(home=tmp_path / "none"), create=False) as app, pytest.raises(KeelError):
        _ = app.rt
    assert not (tmp_path / "none").exists()


def test_a_command_refused_before_its_runtime_makes_no_home(tmp_path: Path) -> None:
    home, project = tmp_path / "home", tmp_path / "missing.toml"
    app = App(Settings(home=home, project=project))
    with pytest.raises(KeelError):
        app.client(acting=True)  # the project is checked before the runtime opens
    assert not home.exists()
    # and through the console script, as before the container
    env = {**os.environ, "KEEL_HOME": str(home)}
    keel = str(Path(sys.executable).with_name("keel"))
    args = ["promote", "approve", "0" * 64, "--env", "prod", "--reason", "r"]
    done = subprocess.run(
        [keel, *args, "--project", str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert not home.exists()
