"""Getting outputs back, on both artifact backends (the local store and a real S3 server):
a skipped `keel step run` restores its outputs at their paths, so the next command of the
pipeline finds them; `keel artifacts get/cat` give an artifact's verified bytes and never write
through a link or over a different file unasked; `keel artifacts put` refuses a symlinked file
and a kind that is not a short name."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.iris_project import FAMILY, KEEL, init_project

pytestmark = pytest.mark.e2e

TRAIN = """
import csv, json, pickle, sys
from sklearn.tree import DecisionTreeClassifier
rows = list(csv.DictReader(open(sys.argv[1])))
cols = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
X = [[float(r[c]) for c in cols] for r in rows]
y = [r["species"] for r in rows]
model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y)
pickle.dump(model, open("model.pkl", "wb"), protocol=5)
counts = {s: y.count(s) for s in sorted(set(y))}
open("counts.json", "w").write(json.dumps(counts, sort_keys=True))
"""
# the pipeline's next command: it needs what the step wrote
PREDICT = (
    "import pickle; print(pickle.load(open('model.pkl', 'rb')).predict([[5.1, 3.5, 1.4, 0.2]])[0])"
)


@pytest.fixture(params=["local", "s3"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    extra: dict[str, str] = {}
    if request.param == "s3":
        s3_env: dict[str, str] = request.getfixturevalue("s3_env")
        extra = {**s3_env, "KEEL_ARTIFACTS": f"s3://keel-contract/{uuid.uuid4().hex[:12]}"}
    yield init_project(tmp_path / "wd", **extra)


def keel(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEEL, *args], capture_output=True, text=True, env=env, cwd=cwd or work(env)
    )


def work(env: dict[str, str]) -> Path:
    return Path(env["KEEL_HOME"]).parent


def corrupt(env: dict[str, str], aid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone with write access to the storage itself changes the artifact's bytes."""
    if "KEEL_ARTIFACTS" in env:
        from keel.artifacts.s3 import S3ArtifactStore

        for k, v in env.items():  # the stack's operator, as the contract tests' attacker
            monkeypatch.setenv(k, v)
        store = S3ArtifactStore(env["KEEL_ARTIFACTS"], create_bucket=False)
        store.s3.put_object(Bucket=store.bucket, Key=store.key_of(aid), Body=b"tampered")
        return
    path = Path(env["KEEL_HOME"]) / "artifacts" / "objects" / aid[:2] / aid[2:]
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")


def test_a_skipped_step_restores_its_outputs(env: dict[str, str]) -> None:
    wd = work(env)
    (wd / "train.py").write_text(TRAIN)
    cmd = ["step", "run", "train", "--family", FAMILY, "--param", "max_depth=3",
           "--output", "model.pkl:model", "--output", "counts.json:class_counts",
           "--code", "train.py", "--json", "--",
           sys.executable, "train.py", "iris.csv"]  # fmt: skip
    first = keel(env, *cmd)
    assert first.returncode == 0, first.stderr
    assert not json.loads(first.stdout)["skipped"]
    made = {p: (wd / p).read_bytes() for p in ("model.pkl", "counts.json")}
    # a fresh checkout (or CI runner): the files are gone, the outputs are stored
    for p in made:
        (wd / p).unlink()
    again = keel(env, *cmd)
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["skipped"]
    assert doc["restored"] == {"model.pkl": "restored", "counts.json": "restored"}
    assert {p: (wd / p).read_bytes() for p in made} == made
    nxt = subprocess.run([sys.executable, "-c", PREDICT], capture_output=True, text=True, cwd=wd)
    assert nxt.returncode == 0 and nxt.stdout.strip() == "setosa", nxt.stderr
    # already there: left alone; a link planted at an output path is replaced, never followed
    victim = wd / "victim.txt"
    victim.write_text("keep me")
    (wd / "model.pkl").unlink()
    (wd / "model.pkl").symlink_to(victim)
    third = keel(env, *cmd)
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["restored"] == {
        "model.pkl": "restored",
        "counts.json": "already in place",
    }
    assert victim.read_text() == "keep me" and not (wd / "model.pkl").is_symlink()
    assert pickle.loads((wd / "model.pkl").read_bytes()).max_depth == 3
    plain = keel(env, *[a for a in cmd if a != "--json"])
    assert "counts.json: already in place" in plain.stdout, plain.stdout


def test_artifacts_get_and_cat_give_verified_bytes(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wd = work(env)
    (wd / "notes.txt").write_bytes(b"petal length separates setosa\n")
    put = keel(env, "artifacts", "put", "notes.txt", "--kind", "field_notes")
    assert put.returncode == 0, put.stderr
    aid = put.stdout.strip()

    got = keel(env, "artifacts", "get", aid[:10], "--out", "out/notes.txt", "--json")
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["state"] == "written"
    assert (wd / "out/notes.txt").read_bytes() == b"petal length separates setosa\n"
    same = keel(env, "artifacts", "get", aid, "--out", "out/notes.txt")
    assert same.returncode == 0 and same.stdout.startswith("unchanged"), same.stderr

    (wd / "out/notes.txt").write_bytes(b"my own edits")
    refused = keel(env, "artifacts", "get", aid, "--out", "out/notes.txt")
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert (wd / "out/notes.txt").read_bytes() == b"my own edits"
    forced = keel(env, "artifacts", "get", aid, "--out", "out/notes.txt", "--force")
    assert forced.returncode == 0 and forced.stdout.startswith("replaced"), forced.stderr
    assert (wd / "out/notes.txt").read_bytes() == b"petal length separates setosa\n"

    victim = wd / "victim.txt"
    victim.write_text("keep me")
    (wd / "link.txt").symlink_to(victim)
    linked = keel(env, "artifacts", "get", aid, "--out", "link.txt")
    assert linked.returncode == 2 and "symbolic link" in linked.stderr
    assert keel(env, "artifacts", "get", aid, "--out", "link.txt", "--force").returncode == 0
    assert victim.read_text() == "keep me" and not (wd / "link.txt").is_symlink()

    cat = subprocess.run([KEEL, "artifacts", "cat", aid[:12]], capture_output=True, env=env)
    assert cat.returncode == 0 and cat.stdout == b"petal length separates setosa\n"

    corrupt(env, aid, monkeypatch)
    bad = keel(env, "artifacts", "get", aid, "--out", "fresh.txt")
    assert bad.returncode == 2 and "ArtifactCorrupted" in bad.stderr
    assert not (wd / "fresh.txt").exists()  # nothing unverified left behind
    assert [p.name for p in wd.iterdir() if ".keel-" in p.name] == []
    bad_cat = subprocess.run([KEEL, "artifacts", "cat", aid], capture_output=True, env=env)
    assert bad_cat.returncode == 2 and bad_cat.stdout == b""


def test_artifacts_put_refuses_a_link_and_a_path_like_kind(env: dict[str, str]) -> None:
    wd = work(env)
    secret = wd / "secret.txt"
    secret.write_text("not meant for the store")
    (wd / "innocent.txt").symlink_to(secret)
    linked = keel(env, "artifacts", "put", "innocent.txt", "--kind", "notes")
    assert linked.returncode == 2 and "symbolic link" in linked.stderr
    (wd / "ok.txt").write_text("fine")
    for kind in ("../../../x", "Notes/2025"):
        bad = keel(env, "artifacts", "put", "ok.txt", "--kind", kind)
        assert bad.returncode == 2 and "short name" in bad.stderr, bad.stderr
    # only the good put is stored: the refused ones wrote nothing
    assert keel(env, "artifacts", "put", "ok.txt", "--kind", "notes").returncode == 0
    checked = keel(env, "artifacts", "verify", "--json")
    assert json.loads(checked.stdout)["checked"] == 1, checked.stdout
