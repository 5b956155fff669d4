"""Issue 33, item 4: equivocation is caught by witnesses. Two independent `keel audit witness
serve` processes on 127.0.0.1; a demo home A and a fork B (a copy, so one audit key signs
both); each fork adds a different event and offers its checkpoint to both witnesses in a
different order. Each witness takes the first fork only with a consistency proof from what it
held, refuses the second and keeps both notes; `keel audit verify --witness URL` reports the
pair as equivocation, printing both signed checkpoints."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.demo_home import KEEL, demo_home

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(600):  # until it answers (or dies); not a timing assertion
        assert proc.poll() is None, "the witness exited"
        try:
            urllib.request.urlopen(f"{url}/logs/none", timeout=5).read()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"the witness at {url} never answered")


@pytest.fixture(scope="module")
def witnesses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    procs, urls = [], []
    for name in ("w1", "w2"):
        port = free_port()
        state = tmp_path_factory.mktemp(name)
        cmd = [KEEL, "audit", "witness", "serve", "--dir", str(state), "--port", str(port)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url, proc in zip(urls, procs, strict=True):
            wait_up(url, proc)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def keel(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=600)


def fork(info: dict[str, Any], env: dict[str, str], to: Path) -> dict[str, str]:
    src = Path(info["workdir"])
    shutil.copytree(src, to, symlinks=True)
    moved = {
        k: v.replace(str(src), str(to)) if k.startswith("KEEL_") else v for k, v in env.items()
    }
    return moved


def add_artifact(env: dict[str, str], tmp: Path, text: str) -> None:
    f = tmp / f"{text}.txt"
    f.write_text(text)
    r = keel(env, "artifacts", "put", str(f), "--kind", "note")
    assert r.returncode == 0, r.stderr


def offer(env: dict[str, str], *urls: str) -> subprocess.CompletedProcess[str]:
    args = [a for u in urls for a in ("--witness", u)]
    return keel(env, "audit", "checkpoint", *args, "--json")


def test_two_witnesses_catch_a_fork_signed_by_one_key(witnesses: list[str], tmp_path: Path) -> None:
    w1, w2 = witnesses
    info, a = demo_home(tmp_path / "a")
    r = offer(a, w1, w2)
    assert r.returncode == 0, r.stdout + r.stderr
    b = fork(info, a, tmp_path / "b")

    add_artifact(a, tmp_path, "only-in-a")
    add_artifact(b, tmp_path, "only-in-b")
    # A reaches w1 first, B reaches w2 first: each extends what that witness held
    assert offer(a, w1).returncode == 0
    assert offer(b, w2).returncode == 0
    # then each fork meets the witness that saw the other: refused, both notes kept
    for env, url in ((b, w1), (a, w2)):
        r = offer(env, url)
        assert r.returncode == 1
        refused = [x for x in json.loads(r.stdout)["witnesses"] if x["status"] == 409]
        assert refused and all("conflict" in x for x in refused), refused

    for env in (a, b):
        r = keel(env, "audit", "verify", "--json", "--witness", w1, "--witness", w2)
        assert r.returncode == 1
        doc = json.loads(r.stdout)
        eq = [p for p in doc["problems"] if p["kind"] == "equivocation"]
        assert {w1, w2} <= {u for p in eq for u in (w1, w2) if u in p["detail"]}, eq
        # both signed checkpoints are printed: the evidence itself
        assert all(p["detail"].count("\u2014 keel-audit-") == 2 for p in eq)
    # without the witnesses, nothing says that the key signed two histories
    r = keel(a, "audit", "verify", "--json")
    assert not [p for p in json.loads(r.stdout)["problems"] if p["kind"] == "equivocation"]
