"""A demo home for end-to-end tests: `keel demo` in a fresh workdir, and the environment that
points `keel` at it (home, project, signing keys)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

KEEL = str(Path(sys.executable).with_name("keel"))


def demo_home(
    workdir: Path, bus: str | None = None, views: str | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """(the demo's JSON document, an env for `keel` on its home); no KEEL_* leaks in. With
    `bus` and `views` (kafka://..., redis://...) the demo runs on them and the env says so."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    backends = ["--bus", bus, "--views", views] if bus and views else []
    out = subprocess.run(
        [KEEL, "demo", "--json", "--workdir", str(workdir), *backends],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr
    demo: dict[str, Any] = json.loads(out.stdout)
    env.update(KEEL_HOME=demo["home"], KEEL_PROJECT=demo["project"], KEEL_KEYS_DIR=demo["keys_dir"])
    env["KEEL_ADMIN_DIR"] = demo["admin_dir"]  # the admin key the demo's keyring names
    if bus and views:
        env.update(KEEL_BUS=bus, KEEL_VIEWS=views)
    return demo, env


def demo_settings(demo: dict[str, Any]) -> Any:
    """Settings for opening a demo home in-process (embedded backends, its project and keys)."""
    from keel.settings import Settings

    return Settings(
        home=Path(demo["home"]),
        bus="",
        views="",
        project=Path(demo["project"]),
        keys_dir=Path(demo["keys_dir"]),
    )
