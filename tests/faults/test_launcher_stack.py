"""`make up` / `make down` as documented, through the launcher's command line (issue 35): two
launchers at once in one directory, switching between the open and the secured stack, and
`keel topics check` right after `up`.

One stack directory and one set of free ports for the module: each test starts from whatever
the previous one left (an `up` of a running stack in its own mode returns in about a second),
so Kafka is formatted and started twice in all (open, then secured), and the module stops
it at the end."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy import lock
from deploy.processes import free_port

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KEEL = str(Path(sys.executable).with_name("keel"))
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class StackDir:
    root: Path
    ports: list[str]

    def argv(self, action: str, *extra: str) -> list[str]:
        # down too gets the ports: it forgets the secrets linked for the stack's addresses
        return [
            *(sys.executable, "-m", "deploy.launcher", action, "--dir", str(self.root)),
            *self.ports,
            *extra,
        ]

    def run(
        self, action: str, *extra: str, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(action, *extra), cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )

    def env(self) -> dict[str, str]:
        """The environment `source DIR/keel.env` gives a shell."""
        lines = (self.root / "keel.env").read_text().splitlines()
        pairs = (line.removeprefix("export ").split("=", 1) for line in lines if line)
        return {**os.environ, **dict(pairs)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackDir]:
    s = StackDir(
        tmp_path_factory.mktemp("launcher") / "infra",
        [
            *("--kafka-port", str(free_port()), "--controller-port", str(free_port())),
            *("--redis-port", str(free_port()), "--s3-port", str(free_port())),
        ],
    )
    yield s
    s.run("down")  # whichever mode the last test left it in


def wait_for_lock_holder(path: Path, pid: int, proc: subprocess.Popen[str]) -> None:
    """Until `pid` holds the stack directory's lock (bounded: 600 looks, and the launcher
    must still be running)."""
    for _ in range(600):
        if path.exists() and path.read_text().startswith(f"{pid} "):
            return
        assert proc.poll() is None, f"the launcher ended (exit {proc.returncode}) unlocked"
        time.sleep(0.05)
    raise AssertionError(f"pid {pid} never wrote {path}: the launcher takes no lock")


def test_a_second_up_at_once_is_refused_naming_the_first(stack: StackDir) -> None:
    first = subprocess.Popen(
        stack.argv("up", "--insecure"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for_lock_holder(stack.root / lock.LOCK_FILE, first.pid, first)
        second = stack.run("up", "--insecure", timeout=120)
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 2, second.stdout + second.stderr
    assert f"another launcher (pid {first.pid}, running `up`)" in second.stderr
    assert str(stack.root) in second.stderr
    assert first.returncode == 0, out + err
    # The one SeaweedFS that ran takes writes (two at once froze its volume growth).
    import boto3

    env = stack.env()
    s3 = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    s3.put_object(Bucket="keel-launcher", Key="after-two-ups", Body=b"written")
    assert s3.get_object(Bucket="keel-launcher", Key="after-two-ups")["Body"].read() == b"written"


def test_a_launcher_refuses_at_once_while_another_holds_the_directory(tmp_path: Path) -> None:
    """The lock alone, without any server: a launcher refuses at once while another process
    holds the directory (here the test itself), and names it."""
    infra = StackDir(tmp_path / "infra", [])
    with lock.held(infra.root, "up"):
        held = infra.run("down", timeout=60)
    assert held.returncode == 2
    assert f"another launcher (pid {os.getpid()}, running `up`)" in held.stderr
    assert infra.run("down", timeout=60).returncode == 0  # released when the holder is done


def test_switching_an_open_stack_to_secured_stops_at_once_saying_what_to_do(
    stack: StackDir,
) -> None:
    assert stack.run("up", "--insecure").returncode == 0  # the open stack (already up: quick)
    assert stack.run("down").returncode == 0
    switched = stack.run("up", timeout=120)
    assert switched.returncode == 2, switched.stdout + switched.stderr
    err = switched.stderr
    assert f"Kafka in {stack.root / 'kafka'} holds data made for the open stack" in err
    assert "without the SCRAM users" in err
    assert f"Redis in {stack.root / 'redis'} holds data made for the open stack" in err
    assert "make up INSECURE=1" in err and f"rm -rf {stack.root}" in err
    assert "did not answer" not in err
    assert not (stack.root / "kafka" / "kafka.pid").exists()  # nothing was started
    assert not (stack.root / "redis" / "redis.pid").exists()
    # The advice works: the data discarded, the secured stack comes up in the same directory.
    subprocess.run(["rm", "-rf", str(stack.root)], check=True)
    up = stack.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    # (the other way, secured data and an open start: tests/unit/test_launcher_modes.py)


def test_topics_and_acls_are_visible_when_up_returns(stack: StackDir) -> None:
    up = stack.run("up")  # secured; formats Kafka when this test runs alone
    assert up.returncode == 0, up.stdout + up.stderr
    check = subprocess.run(
        [KEEL, "topics", "check", "--json"],
        env=stack.env(),
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert '"ok": true' in check.stdout
