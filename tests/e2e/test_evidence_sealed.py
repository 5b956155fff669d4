"""Issue 33, item 1 and the stolen-key check, on a `keel demo` home (embedded default).

- The Merkle leaf commits to everything an answer uses (leaf format 2, decision 0021): an
  attacker with file access but no key who re-stamps a deployment's recorded time (the
  issue's reproduction: backdating an override so `--as-of` answers change), re-keys a record
  or swaps in another valid signature record breaks the checkpoint's root; `verify` says
  "rewritten", with and without a witness.
- A home whose trees were written before format 2 keeps format 1 below where it switched:
  checkpoints over the old leaves stay verifiable, new leaves are format 2, proofs of either
  check, a rebuild gives the same trees.
- With the deploy service's key stolen, a `promotion`-kind ModelDeployed that cites no
  promotion, or another model's or environment's, fails `verify`, named.
Kafka + Redis: tests/integration/test_trail_kafka.py and test_read_without_keel.py."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import sqlite3
import subprocess
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from keel.audit import checkpoint as cp
from keel.audit import merkle
from keel.audit import trees as tr
from keel.bootstrap import bootstrap, sign_all, to_outgoing
from keel.events import decode_event
from keel.events import generated as g
from keel.topics import EVENT_TOPICS
from keel.views.port import Put, Remove
from tests.demo_home import KEEL, demo_home, demo_settings

pytestmark = pytest.mark.e2e
CHECKPOINT_NOTES = "audit:checkpoint-notes"  # keel.audit.anchors: the views' last checkpoint
BACKDATED_TO = "2025-07-10T00:02:00+00:00"  # two minutes after the override's business time


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    demo, _ = demo_home(tmp_path_factory.mktemp("sealed") / "w")
    return demo


@dataclasses.dataclass
class Home:
    demo: dict[str, Any]
    env: dict[str, str]
    log: Path

    def keel(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [KEEL, *args], capture_output=True, text=True, env=self.env, timeout=600
        )
        assert not check or out.returncode in (0, 1), f"keel {' '.join(args)}: {out.stderr}"
        return out

    def json(self, *args: str) -> Any:
        out = self.keel(*args, "--json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def verify(self, *extra: str) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.keel("audit", "verify", "--json", *extra).stdout)
        return doc

    def serving(self, *extra: str) -> dict[str, Any]:
        return self.json("audit", "serving", "--env", "prod", "--at", "2025-07-15", *extra)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        with sqlite3.connect(self.log) as db:
            return db.execute(query, params).fetchall()


@pytest.fixture
def home(pristine: dict[str, Any], tmp_path: Path) -> Home:
    """A copy of the demo's workdir to attack, and the env pointing keel at it."""
    src = Path(pristine["workdir"])
    shutil.copytree(src, tmp_path / "w", symlinks=True)
    demo = {
        k: (v.replace(str(src), str(tmp_path / "w")) if isinstance(v, str) else v)
        for k, v in pristine.items()
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=demo["home"], KEEL_PROJECT=demo["project"], KEEL_KEYS_DIR=demo["keys_dir"])
    env["KEEL_ACTOR"] = "h1-test"
    return Home(demo, env, Path(demo["home"]) / "log.db")


def kinds(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(p["area"], p["kind"], p["where"]) for p in doc["problems"]}


# what these tests break or keep whole: the log, its trees, signatures, citations, the views
# (other checks of verify, e.g. the keyring's, are tested where they are made)
BROKEN = {
    "rewritten",
    "truncated",
    "malformed",
    "bad-signature",
    "unsigned",
    "undecodable",
    "uncited-promotion",
    "unknown-promotion",
    "mismatched-promotion",
}


def broken(doc: dict[str, Any]) -> list[dict[str, str]]:
    """Problems with the trees, signatures and citations, and the views' trees differing from
    a fresh fold's (the leaf format each tree holds where)."""
    return [
        p
        for p in doc["problems"]
        if p["kind"] in BROKEN or (p["area"] == "views" and tr.TREES in p["where"])
    ]


def june_model(demo: dict[str, Any]) -> str:
    """The demo's June model: staging took it, prod's gate refused it."""
    (model,) = [d["model_id"] for d in demo["deployments"] if d["at"].startswith("2025-06")]
    return str(model)


def override_june(h: Home) -> tuple[str, int]:
    """`keel deploy <June's model> --env prod --override --at 2025-07-10`: its event ID and row."""
    doc = h.json(
        "deploy",
        june_model(h.demo),
        "--env",
        "prod",
        "--override",
        "--at",
        "2025-07-10",
        "--reason",
        "hotfix",
    )
    (seq,) = h.sql("SELECT MAX(seq) FROM events WHERE topic = 'deployments'")[0]
    return doc["event_id"], int(seq)


# -- item 1: the reproduction ------------------------------------------------------
def test_a_backdated_recorded_time_breaks_the_tree(home: Home, tmp_path: Path) -> None:
    event_id, seq = override_june(home)
    witness = tmp_path / "witness.json"
    assert home.keel("audit", "checkpoint", "--to", str(witness)).returncode == 0
    honest = home.serving()["serving"]
    assert honest["event_id"] == event_id and honest["backdated"] is True
    assert home.serving("--as-of", "2025-07-20")["serving"] is None  # recorded much later

    backdated = int(datetime.fromisoformat(BACKDATED_TO).timestamp() * 1000)
    home.sql("UPDATE events SET recorded = ? WHERE seq = ?", (backdated, seq))
    # what verify's hint recommends: refold the views from the log. Before the leaf held the
    # recorded time, this folded the lie (`backdated: false`, recorded 2025-07-10, and the
    # override in the --as-of 2025-07-20 answer) and verify passed; now the tree disagrees
    # with what was signed, so publishing refuses (or verify names it, where no witness held)
    rebuilt = home.keel("audit", "rebuild", check=False)
    assert rebuilt.returncode == 0 or "deployments/0" in rebuilt.stderr, rebuilt.stderr
    # A refused rebuild leaves the views as they were (decision 0034: folded into a fresh file,
    # copied over them only when the fold succeeds): the answer stays the honest one, and the
    # views' trees then differ from a fresh fold of the altered log, which verify names too.
    kept = rebuilt.returncode != 0
    if kept:
        assert home.serving()["serving"]["backdated"] is True
    expected = {"deployments/0", f"docs:{tr.TREES}"} if kept else {"deployments/0"}
    for extra in ((), ("--checkpoint", str(witness))):
        doc = home.verify(*extra)
        assert not doc["ok"]
        assert ("checkpoint", "rewritten", "deployments/0") in kinds(doc), doc["problems"]
        assert {p["where"] for p in broken(doc)} == expected, doc["problems"]


@pytest.mark.parametrize("tamper", ["key", "re-signed", "writer-time"])
def test_every_field_of_a_read_is_in_the_leaf(home: Home, tamper: str) -> None:
    """What else a read gives and no signature covers: the record's key, which valid
    signature record it carries (a chunk re-signed with the same key), the writer's time."""
    (seq, value, sig) = home.sql(
        "SELECT seq, value, sig FROM events WHERE topic = 'deployments' ORDER BY seq DESC LIMIT 1"
    )[0]
    if tamper == "key":
        home.sql("UPDATE events SET key = key || '.moved' WHERE seq = ?", (seq,))
    elif tamper == "writer-time":
        home.sql("UPDATE events SET ts = ts - 86400000 WHERE seq = ?", (seq,))
    else:
        with bootstrap(demo_settings(home.demo), create=False) as rt:
            other = next(iter(rt.log.read(["deployments"]))).value
            resigned = rt.signer.sign(
                [("deploy", "ModelDeployed", value), ("deploy", "ModelDeployed", other)]
            )[0]
            assert (
                resigned != sig and rt.trust.check(value, resigned, "ModelDeployed").problem is None
            )
        home.sql("UPDATE events SET sig = ? WHERE seq = ?", (resigned, seq))
    doc = home.verify()
    assert ("checkpoint", "rewritten", "deployments/0") in kinds(doc), json.dumps(
        doc["problems"], indent=1
    )
    assert not [p for p in doc["problems"] if p["area"] == "signature"]  # still validly signed


def parse_leaf(data: bytes) -> dict[str, Any]:
    """Leaf format 2 read the way a third party would (decision 0021), no Keel import."""
    magic, position, times, lengths, rest = data.split(b"\n", 4)
    assert magic == b"keel-leaf/2"
    recorded, writer = (int(x) for x in times.split(b" "))
    nk, nv, ns = (int(x) for x in lengths.split(b" "))
    assert len(rest) == nk + nv + ns
    return {
        "position": position.decode(),
        "recorded_ms": recorded,
        "writer_ms": writer,
        "key": rest[:nk].decode(),
        "value": rest[nk : nk + nv],
        "sig": rest[nk + nv :],
    }


# -- old homes: format 1 below the switch ------------------------------------------------------
def downgrade(h: Home) -> dict[str, int]:
    """Make the home what a Keel before leaf format 2 left: format-1 trees in the views (no
    leaf2_from), checkpoints whose notes state no leaf format, signed by the audit key."""
    h.sql("DELETE FROM events WHERE topic = 'audit'")
    with bootstrap(demo_settings(h.demo), create=False) as rt:
        trees: dict[tuple[str, int], merkle.Frontier] = {}
        for rec in rt.log.read(list(EVENT_TOPICS)):
            trees.setdefault(rec.tp, merkle.Frontier()).append(tr.leaf_v1(rec))
        now = datetime.now(UTC)
        heads = tuple(
            g.TreeHead(
                topic=tp[0],
                partition=tp[1],
                size=t.size,
                root=t.root().hex(),
                note=cp.sign(cp.body(tp[0], tp[1], t.size, t.root(), now), rt.signer),
            )
            for tp, t in sorted(trees.items())
        )
        event = dataclasses.replace(tr.checkpoint_event(trees, rt.signer, "old"), trees=heads)
        rt.log.append([to_outgoing(rt.codec, event)])
        old_docs = {
            tr.tp_key(tp): {"size": t.size, "hashes": [x.hex() for x in t.hashes]}
            for tp, t in trees.items()
        }
        sizes = {tr.tp_key(tp): t.size for tp, t in trees.items()}
        # and none of what later Keels keep: the last checkpoint's notes in the views
        rt.views.apply(
            [Put(tr.TREES, old_docs), Put(tr.CHECKPOINTED, sizes), Remove(CHECKPOINT_NOTES)]
        )
    return sizes


def check_proof(proof: dict[str, Any]) -> bool:
    """The RFC 9162 walk from the leaf to the checkpoint's root (signature: test_third_party)."""
    lines = proof["checkpoint"].split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    leaf = merkle.leaf_hash(base64.b64decode(proof["leaf_data"]))
    path = [bytes.fromhex(x) for x in proof["inclusion_path"]]
    return size == proof["tree_size"] and merkle.verify_inclusion(
        proof["leaf_index"], size, leaf, path, root
    )


def test_an_old_home_keeps_format_1_below_the_switch(home: Home, tmp_path: Path) -> None:
    sizes = downgrade(home)
    old_witness = tmp_path / "old.json"
    assert home.keel("audit", "checkpoint", "--to", str(old_witness)).returncode == 0
    assert "leaf 2 from" not in old_witness.read_text()
    assert not broken(home.verify("--checkpoint", str(old_witness)))
    old_deployment = home.demo["answers"]["serving_prod_at"]["serving"]["event_id"]

    event_id, seq = override_june(home)  # new records: format 2 from the old size on
    new_witness = tmp_path / "new.json"
    assert home.keel("audit", "checkpoint", "--to", str(new_witness)).returncode == 0
    assert f"leaf 2 from {sizes['deployments/0']}" in new_witness.read_text()
    both = ("--checkpoint", str(old_witness), "--checkpoint", str(new_witness))
    assert not broken(home.verify(*both))

    old = home.json("audit", "prove", old_deployment)
    new = home.json("audit", "prove", event_id)
    assert old["leaf_format"] == 1 and new["leaf_format"] == 2
    assert check_proof(old) and check_proof(new)
    assert parse_leaf(base64.b64decode(new["leaf_data"]))["position"] == new["position"]

    with bootstrap(demo_settings(home.demo), create=False) as rt:
        before = rt.views.get(tr.TREES)
    assert home.keel("audit", "rebuild").returncode == 0  # the switch comes back from the log
    with bootstrap(demo_settings(home.demo), create=False) as rt:
        assert rt.views.get(tr.TREES) == before
    assert not broken(home.verify(*both))

    # a format-2 leaf commits to its recorded time, also on an old home
    home.sql("UPDATE events SET recorded = recorded - 86400000 WHERE seq = ?", (seq,))
    doc = home.verify(*both)
    assert ("checkpoint", "rewritten", "deployments/0") in kinds(doc), doc["problems"]


# -- a stolen service key ---------------------------------------------------------------
def promotions(rt: Any) -> list[g.ModelPromoted]:
    out = []
    for rec in rt.log.read(["registry"]):
        event = decode_event(rt.codec, rec.value)
        if isinstance(event, g.ModelPromoted):
            out.append(event)
    return out


@pytest.mark.parametrize("cites", ["nothing", "another model", "another environment", "a time"])
def test_a_promotion_deployment_signed_with_a_stolen_deploy_key(home: Home, cites: str) -> None:
    """The deploy key may write ModelDeployed; a forged 'promotion' must still cite a
    promotion of that model to that environment, at its time."""
    with bootstrap(demo_settings(home.demo), create=False) as rt:
        promos = promotions(rt)
        june = next(p for p in promos if p.model_id == june_model(home.demo))
        assert june.env == "staging"  # prod's gate refused it: no prod promotion to cite
        real = next(
            decode_event(rt.codec, r.value)
            for r in rt.log.read(["deployments"])
            if isinstance(decode_event(rt.codec, r.value), g.ModelDeployed)
        )
        other = next(p for p in promos if p.env == "prod")
        cited = {
            "nothing": None,
            "another model": other.envelope.event_id,
            "another environment": june.envelope.event_id,
            "a time": other.envelope.event_id,
        }[cites]
        model = other.model_id if cites == "a time" else june.model_id
        forged = dataclasses.replace(
            real,
            envelope=dataclasses.replace(
                real.envelope,
                event_id=str(uuid.uuid4()),
                occurred_at=datetime(2025, 7, 10, tzinfo=UTC),
            ),
            env="prod",
            model_id=model,
            kind="promotion",
            promotion_event_id=cited,
        )
        assert forged.envelope.producer.service == "deploy"
        rt.log.append(sign_all(rt.signer, rt.codec, [forged]))  # the deploy key signs it
    doc = home.verify()
    bad = [p for p in doc["problems"] if p["area"] == "citation"]
    assert len(bad) == 1, doc["problems"]
    assert forged.envelope.event_id in bad[0]["detail"] and bad[0]["where"].startswith(
        "deployments/"
    )
    assert not [p for p in doc["problems"] if p["area"] == "signature"]  # validly signed


def test_the_demo_and_a_rollback_cite_what_they_claim(home: Home) -> None:
    doc = home.json(
        "deploy",
        "rollback",
        "--family",
        "breast_cancer",
        "--env",
        "prod",
        "--at",
        "2025-11-01",
        "--reason",
        "r",
    )
    assert doc
    assert not broken(home.verify())
