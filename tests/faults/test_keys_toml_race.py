"""Processes adding keys to one project at once lost each other's keys.

keys.toml was read, changed and written back with no lock (`keel keys create`, `keel init`,
`keel keys retire`): two processes that read it before either wrote it each wrote back their
own key alone, and the last writer's file won. Both wrote through the same `keys.toml.tmp`, so
one could rename the other's half-written file into place (a reader then parsed a torn file) or
find the file already renamed away and fail. Real processes here: writers released together onto
one keys.toml with a reader parsing it throughout, and `keel keys create` / `retire` started
together on one project, whose trail must then agree with keys.toml."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keel import dirlock
from keel.errors import KeelError
from keel.signing import create_key, keys_lock, load_private, load_trust
from tests.faults import test_admin_key_race as race

pytestmark = pytest.mark.faults
KEEL = str(Path(sys.executable).with_name("keel"))
WRITERS = 6
KEYS_EACH = 3
ROUNDS = 10

# Each writer imports what it needs, says it is ready, waits for the start signal, then adds
# its keys one after another: the writers' read-modify-writes overlap as two `keel keys create`
# on one project do when they run at the same moment.
WRITER = """
import sys, time
from pathlib import Path
from keel.signing import create_key
import cryptography.hazmat.primitives.asymmetric.ed25519
import cryptography.hazmat.primitives.serialization
keys_file, keys_dir, ready, go = (Path(a) for a in sys.argv[1:5])
ready.touch()
while not go.exists():
    time.sleep(0.0002)
for identity in sys.argv[5:]:
    print(identity, create_key(identity, keys_file, keys_dir).id, flush=True)
"""

# Parses keys.toml as every command does (load_trust, no lock) until told to stop; prints each
# failure. Ready once it has parsed the file once.
READER = """
import sys
from pathlib import Path
from keel.errors import KeelError
from keel.signing import load_trust
keys_file, ready, stop = (Path(a) for a in sys.argv[1:4])
load_trust(keys_file)
ready.touch()
reads = 0
while not stop.exists():
    try:
        load_trust(keys_file)
    except (KeelError, OSError) as exc:
        print(f"read {reads}: {type(exc).__name__}: {exc}", flush=True)
    reads += 1
print(f"reads {reads}", flush=True)
"""


def python(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_ready(ready: list[Path], procs: list[subprocess.Popen[str]]) -> None:
    while not all(r.exists() for r in ready):
        assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
        time.sleep(0.01)


def writers_at_once(root: Path) -> tuple[dict[str, str], list[str]]:
    """({identity: key ID} each writer was handed, what the reader saw go wrong) after
    WRITERS processes added KEYS_EACH keys each to one keys.toml, all released at once."""
    root.mkdir()
    keys_file, keys_dir, go, stop = root / "keys.toml", root / "keys", root / "go", root / "stop"
    create_key("first", keys_file, keys_dir)  # the reader always finds a file to parse
    reader = python(READER, str(keys_file), str(root / "reader_ready"), str(stop))
    wait_ready([root / "reader_ready"], [reader])
    ready = [root / f"ready{i}" for i in range(WRITERS)]
    writers = [
        python(
            WRITER,
            str(keys_file),
            str(keys_dir),
            str(r),
            str(go),
            *(f"w{i}_{j}" for j in range(KEYS_EACH)),
        )
        for i, r in enumerate(ready)
    ]
    wait_ready(ready, writers)
    go.touch()
    made = {}
    try:
        for p in writers:
            out, err = p.communicate(timeout=600)
            assert p.returncode == 0, err  # before: replace() of a temp file renamed away
            made.update(line.split() for line in out.splitlines())
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=600)
    assert reader.returncode == 0, err
    return made, [line for line in out.splitlines() if not line.startswith("reads ")]


def test_writers_at_once_keep_every_key_and_readers_never_see_a_torn_file(
    tmp_path: Path,
) -> None:
    """On two cores the unlocked read-modify-write lost keys in every round before (of 18
    added, 7-13 were missing from keys.toml; a writer crashed on the shared temporary name in
    8 of 10), so ten rounds: a lost key or a failed read anywhere fails."""
    for round_ in range(ROUNDS):
        root = tmp_path / f"round{round_}"
        made, torn = writers_at_once(root)
        assert len(made) == WRITERS * KEYS_EACH, (round_, made)
        assert not torn, (round_, torn)
        trust = load_trust(root / "keys.toml")
        listed = {k.identity: k.id for k in trust.keys.values() if k.identity != "first"}
        assert listed == made, (round_, sorted(set(made) - set(listed)))
        assert all(k.status == "active" for k in trust.keys.values()), round_
        # every key listed has its private half, and the two belong together
        private = load_private(root / "keys")
        assert set(private) == set(trust.keys), round_
        for kid in listed.values():
            public = private[kid].public_key().public_bytes_raw()
            assert public == trust.keys[kid].public, (round_, kid)


def project(root: Path) -> dict[str, str]:
    """test_admin_key_race's project (its own admin directory), recorded in its trail."""
    env = race.project(root, root / "admin")
    keel(env, "keys", "record", "--json")
    return env


RETIRED = ("ingest", "train")


def keel(env: dict[str, str], *args: str) -> dict[str, object]:
    r = subprocess.run([KEEL, *args], capture_output=True, text=True, env=env, timeout=600)
    assert r.stdout.startswith("{"), r.stderr
    return dict(json.loads(r.stdout))


def test_keel_keys_create_and_retire_at_once_on_one_project(tmp_path: Path) -> None:
    """Four `keel keys create` (two identities each) and two `keel keys retire` started
    together: keys.toml ends with every key created, both retired keys retired and the
    others untouched, and the trail records exactly that (verify ok)."""
    env = project(tmp_path)
    keys_file = tmp_path / "proj" / "keys.toml"
    before = {k.id: k.status for k in load_trust(keys_file).keys.values() if k.identity != "admin"}
    retired = [kid for kid, k in load_trust(keys_file).keys.items() if k.identity in RETIRED]
    commands = [["keys", "create", f"c{i}a", f"c{i}b", "--json"] for i in range(4)]
    commands += [["keys", "retire", kid, "--json"] for kid in retired]
    procs = [
        subprocess.Popen(
            [KEEL, *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        for c in commands
    ]
    created = {}
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        for k in json.loads(out).get("created", []):
            created[k["identity"]] = k["id"]
    assert len(created) == 8, created

    trust = load_trust(keys_file)
    status = {k.id: k.status for k in trust.keys.values() if k.identity != "admin"}
    assert status == {
        **before,
        **dict.fromkeys(retired, "retired"),
        **dict.fromkeys(created.values(), "active"),
    }, status
    doc = keel(env, "audit", "verify", "--json")
    assert doc["ok"], doc["problems"]


HOLDER = """
import sys, time
from pathlib import Path
from keel.signing import keys_lock
keys_file, held, release = (Path(a) for a in sys.argv[1:4])
with keys_lock(keys_file):
    held.touch()
    while not release.exists():
        time.sleep(0.01)
"""


def test_a_keys_lock_not_taken_in_time_names_the_file_and_its_holder(tmp_path: Path) -> None:
    """A process holding keys.toml's lock (here: one that waits for a file) makes another
    give up after its timeout with an error naming the lock file, the holder's pid and what
    to do; once the holder exits, the lock is free."""
    keys_file = tmp_path / "keys.toml"
    held, release = tmp_path / "held", tmp_path / "release"
    holder = python(HOLDER, str(keys_file), str(held), str(release))
    try:
        wait_ready([held], [holder])
        with pytest.raises(KeelError) as caught, keys_lock(keys_file, timeout=0.2):
            pass
        message = str(caught.value)
        assert str(tmp_path / ".keys.toml.lock") in message, message
        assert f"pid {holder.pid}" in message, message
        assert caught.value.hint and "wait" in caught.value.hint, caught.value.hint
    finally:
        release.touch()
        holder.communicate(timeout=600)
    assert holder.returncode == 0
    with dirlock.held(tmp_path, ".keys.toml.lock", "checking", timeout=0.2):
        pass
