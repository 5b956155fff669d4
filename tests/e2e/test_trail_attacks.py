"""Every attack from the trust issue, by someone with file access to an embedded home: each one
now fails `keel audit verify` with the problem named, and a forged event never reaches an
answer. Kafka + Redis: tests/integration/test_trail_kafka.py."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from keel.artifacts.store import LocalArtifactStore
from keel.codec import Codec
from keel.log.sqlite import SqliteEventLog
from tests import attacks

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))


class Home:
    def __init__(self, tmp_path: Path) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        demo = json.loads(self.run("demo", "--json", "--workdir", str(tmp_path)).stdout)
        self.demo = demo
        self.home = Path(demo["home"])
        self.env.update(
            KEEL_HOME=demo["home"],
            KEEL_PROJECT=demo["project"],
            KEEL_KEYS_DIR=demo["keys_dir"],
            KEEL_ADMIN_DIR=demo["admin_dir"],
        )
        self.witness = tmp_path / "witness.json"
        assert self.run("audit", "checkpoint", "--to", str(self.witness)).returncode == 0

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([KEEL, *args], capture_output=True, text=True, env=self.env, timeout=600)
        if check and r.returncode not in (0, 1):
            raise AssertionError(f"keel {' '.join(args)}: {r.returncode}\n{r.stderr}")
        return r

    def verify(self, *extra: str) -> tuple[int, dict[str, Any]]:
        r = self.run("audit", "verify", "--json", *extra)
        return r.returncode, json.loads(r.stdout)

    def prod_models(self) -> list[str]:
        return [d["model_id"] for d in self.demo["deployments"] if d["env"] == "prod"]


def kinds(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(p["area"], p["kind"]) for p in doc["problems"]}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Home:
    return Home(tmp_path_factory.mktemp("trail"))


@pytest.fixture
def home(pristine: Home, tmp_path: Path) -> Home:
    """A copy of the demo's workdir, to attack."""
    import shutil

    src = Path(pristine.demo["workdir"])
    shutil.copytree(src, tmp_path / "w", symlinks=True)
    h = Home.__new__(Home)
    h.demo = {
        k: (v.replace(str(src), str(tmp_path / "w")) if isinstance(v, str) else v)
        for k, v in pristine.demo.items()
    }
    h.home = Path(h.demo["home"])
    h.env = {
        **pristine.env,
        "KEEL_HOME": h.demo["home"],
        "KEEL_PROJECT": h.demo["project"],
        "KEEL_KEYS_DIR": h.demo["keys_dir"],
    }
    h.witness = pristine.witness
    return h


def test_the_untouched_demo_verifies(home: Home) -> None:
    code, doc = home.verify("--checkpoint", str(home.witness))
    assert code == 0, doc["problems"]
    assert doc["events"] == doc["signed"] > 100
    assert doc["trees"]["checked"] >= 7 and not doc["trees"]["uncovered"]


def test_a_forged_deployment_is_flagged_and_never_answers(home: Home) -> None:
    victim = home.prod_models()[0]
    log = SqliteEventLog(home.home / "log.db")
    from keel.schemas.registry import load_registry

    forged = attacks.forged_deployment(log, Codec(load_registry()), victim)
    log.close()
    attacks.append_sqlite(home.home / "log.db", forged.topic, forged.key, forged.value)
    code, doc = home.verify()
    assert code == 1
    (bad,) = [p for p in doc["problems"] if p["area"] == "signature"]
    assert bad["kind"] == "unsigned" and "mallory" in bad["detail"]
    assert "f0f0f0f0-0000-4000-8000-000000000001" in bad["detail"]
    serving = json.loads(
        home.run("audit", "serving", "--env", "prod", "--at", "2026-06-01", "--json").stdout
    )
    assert serving["serving"]["model_id"] == home.prod_models()[-1]  # not mallory's
    # ... nor a rollback target: the forged deployment is not part of prod's history
    r = home.run("deploy", "rollback", "--family", "breast_cancer", "--env", "prod", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["previous_model_id"] == home.prod_models()[-1]


def test_a_validly_signed_event_by_the_wrong_identity_is_unauthorised(home: Home) -> None:
    from keel.bootstrap import bootstrap
    from keel.settings import Settings
    from keel.signing import Signer

    settings = Settings(
        home=home.home, project=Path(home.demo["project"]), keys_dir=Path(home.demo["keys_dir"])
    )
    with bootstrap(settings, create=False) as rt:
        log = rt.log
        forged = attacks.forged_deployment(log, rt.codec, home.prod_models()[0])
        # ingest's own key, signing as ingest: a valid signature, but ingest may not deploy
        signer = Signer(rt.trust, rt.signer.private)
        blob = signer.sign([("ingest", "DatasetIngested", forged.value)])[0]
    attacks.append_sqlite(home.home / "log.db", forged.topic, forged.key, forged.value, blob)
    code, doc = home.verify()
    assert code == 1
    assert any("'ingest' may not write ModelDeployed" in p["detail"] for p in doc["problems"])


def test_deleting_the_last_event_and_its_checkpoints_is_caught_by_the_witness(
    home: Home,
) -> None:
    attacks.truncate_sqlite_log(home.home / "log.db")
    code, doc = home.verify("--checkpoint", str(home.witness))
    assert code == 1
    assert ("checkpoint", "truncated") in kinds(doc)
    # without a witness, the log alone still says no checkpoint covers it
    code, doc = home.verify()
    assert code == 1 and ("checkpoint", "none") in kinds(doc)


def test_rewriting_an_event_is_caught_by_the_checkpoints(home: Home) -> None:
    with sqlite3.connect(home.home / "log.db") as db:
        seq, value = db.execute(
            "SELECT seq, value FROM events WHERE topic = 'registry' ORDER BY seq LIMIT 1"
        ).fetchone()
        db.execute(
            "UPDATE events SET value = ? WHERE seq = ?",
            (value.replace(b"keel-demo", b"keel-dem0"), seq),
        )
    code, doc = home.verify("--checkpoint", str(home.witness))
    assert code == 1
    assert {("checkpoint", "rewritten"), ("signature", "bad-signature")} <= kinds(doc)


def test_a_swapped_model_blob_is_refused_by_verify_rollback_and_serve(home: Home) -> None:
    victim, donor = home.prod_models()[0], home.prod_models()[-1]
    store = LocalArtifactStore(home.home / "artifacts")
    attacks.swap_blob(store, victim, donor)
    store.close()
    r = home.run("artifacts", "verify")
    assert r.returncode == 0  # the catalog agrees with the bytes: only the trail can tell
    code, doc = home.verify()
    assert code == 1
    bad = {(p["kind"], p["where"]) for p in doc["problems"] if p["area"] == "catalog"}
    assert {("digest-mismatch", victim), ("bytes-mismatch", victim)} <= bad
    r = home.run(
        "deploy",
        "rollback",
        "--family",
        "breast_cancer",
        "--env",
        "prod",
        "--to",
        victim,
        check=False,
    )
    assert r.returncode == 2 and "refused" in r.stderr, r.stderr
    tail = home.run("audit", "tail", "--json", "--topic", "artifacts").stdout.splitlines()
    rejected = json.loads(tail[-1])
    assert rejected["envelope"]["event_type"] == "ArtifactRejected"
    assert rejected["artifact_id"] == victim and rejected["action"] == "rollback"


def test_rewritten_views_are_caught(home: Home) -> None:
    with sqlite3.connect(home.home / "views.db") as db:
        rows = db.execute("SELECT key, doc FROM docs WHERE key LIKE 'deployment:%'").fetchall()
        assert rows
        key, value = rows[-1]
        doc = json.loads(value)
        doc["model_id"] = "0" * 64
        db.execute("UPDATE docs SET doc = ? WHERE key = ?", (json.dumps(doc), key))
    code, doc = home.verify()
    assert code == 1
    assert ("views", "altered") in kinds(doc)
    assert home.run("audit", "rebuild").returncode == 0
    assert home.verify()[0] == 0


def test_an_undecodable_row_is_reported(home: Home) -> None:
    attacks.append_sqlite(home.home / "log.db", "registry", "x", b"\x00\x01garbage")
    code, doc = home.verify()
    assert code == 1 and ("log", "undecodable") in kinds(doc)


def test_a_tampered_witness_checkpoint_is_detected(home: Home, tmp_path: Path) -> None:
    w = json.loads(home.witness.read_text())
    note = w["notes"][0]
    lines = note.split("\n")
    lines[1] = str(int(lines[1]) + 5)  # claim a bigger tree
    w["notes"][0] = "\n".join(lines)
    forged = tmp_path / "forged-witness.json"
    forged.write_text(json.dumps(w))
    code, doc = home.verify("--checkpoint", str(forged))
    assert code == 1 and ("checkpoint", "bad-signature") in kinds(doc)


def test_an_unknown_key_is_named(home: Home) -> None:
    keys = Path(home.demo["project"]).with_name("keys.toml")
    text = keys.read_text()
    # drop the deploy identity's key from the trusted list: its events become unknown-key
    blocks = text.split("\n\n")
    keys.write_text("\n\n".join(b for b in blocks if 'identity = "deploy"' not in b))
    code, doc = home.verify()
    assert code == 1
    assert any("keys.toml does not list" in p["detail"] for p in doc["problems"])


def test_rotating_a_key_keeps_old_events_valid(home: Home) -> None:
    r = home.run("keys", "create", "deploy", "--json")
    assert r.returncode == 0, r.stderr
    r = home.run("deploy", "rollback", "--family", "breast_cancer", "--env", "prod", "--json")
    assert r.returncode == 0, r.stderr
    code, doc = home.verify()
    assert code == 0, doc["problems"]
    keys = json.loads(home.run("keys", "list", "--json").stdout)["keys"]
    assert sorted(k["status"] for k in keys if k["identity"] == "deploy") == ["active", "retired"]


def test_a_checkpoint_goes_to_an_http_witness(home: Home, tmp_path: Path) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    got: list[bytes] = []

    class Witness(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(201)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Witness)
    thread = threading.Thread(target=server.handle_request, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/checkpoints"
    r = home.run("audit", "checkpoint", "--to", url)
    thread.join(timeout=30)
    server.server_close()
    assert r.returncode == 0 and "HTTP 201" in r.stdout, r.stderr
    kept = tmp_path / "kept.json"
    kept.write_bytes(got[0])  # what the witness stored checks the log like a file witness
    assert home.verify("--checkpoint", str(kept))[0] == 0


def test_queries_and_verify_work_with_the_public_keys_only(home: Home, tmp_path: Path) -> None:
    """An auditor holds keys.toml but no private key: answers and verify still work."""
    home.env["KEEL_KEYS_DIR"] = str(tmp_path / "no-keys-here")
    r = home.run("audit", "serving", "--env", "prod", "--json")
    assert r.returncode == 0, r.stderr
    code, doc = home.verify()
    assert code == 0, doc["problems"]
