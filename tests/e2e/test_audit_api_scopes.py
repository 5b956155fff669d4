"""Issue 33, item 5: the audit API's token cannot write. `keel service run audit` on a copy of a
demo home, over real HTTP: the console's token (KEEL_API_TOKEN) is a read token and every POST
with it is refused (it used to deploy an override to prod, recorded as `unknown` and signed with
the server's deploy key); an act token belongs to one person, and what it records names them,
how they were authenticated and who signed (their key where the server holds it, else the
services' keys on their behalf); a cookie session cannot act from another origin; the console's
pages carry a Content-Security-Policy that forbids framing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel.codec import Codec
from keel.events import decode_event
from keel.log.sqlite import SqliteEventLog
from keel.schemas.registry import load_registry
from keel.signing import load_trust
from tests.demo_home import KEEL, demo_home
from tests.e2e.test_http_services import free_port, wait_up
from tests.e2e.test_people import RELEASE

pytestmark = pytest.mark.e2e
READ = "console-read-t0k"  # what the read-only console logs in with
FAMILY = "breast_cancer"
AT, LATER = "2025-09-01T00:00:00Z", "2025-09-15T00:00:00Z"


class Home:
    def __init__(self, demo: dict[str, Any], env: dict[str, str]) -> None:
        self.demo, self.env = demo, env

    def keel(self, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEEL, *args], capture_output=True, text=True, env={**self.env, **extra}, timeout=300
        )

    def token(self, scope: str, identity: str | None = None) -> dict[str, Any]:
        args = ["audit", "tokens", "create", "--scope", scope, "--json"]
        out = self.keel(*args, *(["--identity", identity] if identity else []))
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc

    @contextmanager
    def service(self) -> Iterator[str]:
        port = free_port()
        proc = subprocess.Popen(
            [KEEL, "service", "run", "audit", "--port", str(port)],
            env={**self.env, "KEEL_API_TOKEN": READ},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_up(url, proc)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    def candidate(self, url: str) -> str:
        """A model that did not serve prod on LATER (the one before July's)."""
        july = self.demo["answers"]["serving_prod_at"]["serving"]
        assert july["previous_model_id"] != serving(url, LATER)["model_id"]
        return str(july["previous_model_id"])

    def recorded(self, event_id: str) -> tuple[Any, str]:
        """The recorded event and the identity whose signature it carries, checked against
        keys.toml and the roles of keel.toml (a valid key of an identity that may write it)."""
        log = SqliteEventLog(Path(self.demo["home"]) / "log.db")
        codec = Codec(load_registry())
        project = Path(self.demo["project"])
        trust = load_trust(project.with_name("keys.toml"), project)
        try:
            for rec in log.read():
                event = decode_event(codec, rec.value)
                if event.envelope.event_id == event_id:
                    verdict = trust.check(rec.value, rec.sig, event.EVENT_TYPE)
                    assert verdict.problem is None, verdict
                    assert verdict.identity is not None
                    return event, verdict.identity
        finally:
            log.close()
        raise AssertionError(f"no event {event_id} in the log")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def serving(url: str, at: str) -> dict[str, Any]:
    r = httpx.get(f"{url}/v1/serving/{FAMILY}/prod", params={"at": at}, headers=bearer(READ))
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()["serving"]
    return found


OVERRIDE = {"env": "prod", "override": True, "at": AT, "reason": "x"}  # the request


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Home:
    demo, env = demo_home(tmp_path_factory.mktemp("scopes") / "w")
    return Home(demo, env)


@pytest.fixture
def home(pristine: Home, tmp_path: Path) -> Home:
    """A copy of the demo's workdir (home, project, keys): the tests record things."""
    src = pristine.demo["workdir"]
    shutil.copytree(src, tmp_path / "w", symlinks=True)
    demo = {
        k: (v.replace(src, str(tmp_path / "w")) if isinstance(v, str) else v)
        for k, v in pristine.demo.items()
    }
    env = {
        **pristine.env,
        "KEEL_HOME": demo["home"],
        "KEEL_PROJECT": demo["project"],
        "KEEL_KEYS_DIR": demo["keys_dir"],
        "KEEL_WITNESS_DIR": str(tmp_path / "witness"),
    }
    return Home(demo, env)


def test_the_consoles_read_token_cannot_deploy_or_roll_back(home: Home) -> None:
    with home.service() as url:
        model = home.candidate(url)
        before = serving(url, LATER)
        posts = {
            f"/v1/models/{model}/deploy": OVERRIDE,
            f"/v1/families/{FAMILY}/rollback": {"env": "prod", "at": AT, "reason": "x"},
            f"/v1/models/{model}/approve": {"env": "prod", "reason": "x"},
            f"/v1/models/{model}/reject": {"env": "prod", "reason": "x"},
            f"/v1/models/{model}/evaluate": {"env": "prod"},
        }
        for path, body in posts.items():
            r = httpx.post(url + path, json=body, headers=bearer(READ), timeout=60)
            assert r.status_code == 403, (path, r.status_code, r.text)
            assert "scope is read" in r.text and "needs a token of scope act" in r.text, r.text
        assert serving(url, LATER) == before


def test_an_act_token_records_its_person_and_signs_on_their_behalf(home: Home) -> None:
    bob = home.token("act", "bob")
    assert bob["signing"] == "signed on behalf of bob by the server's service keys"
    stored = (Path(home.demo["keys_dir"]) / "api-tokens.json").read_text()
    assert bob["token"] not in stored and bob["id"] in stored  # only its digest is kept
    with home.service() as url:
        model = home.candidate(url)
        r = httpx.post(
            f"{url}/v1/models/{model}/deploy",
            json=OVERRIDE,
            headers=bearer(bob["token"]),
            timeout=120,
        )
        assert r.status_code == 200, r.text
        done = r.json()
        auth = done["authenticated"]
        assert auth["identity"] == "bob" and auth["token"] == bob["id"]
        assert auth["on_behalf"] is True and auth["signed_by"] is None
        now = serving(url, LATER)
        assert now["model_id"] == model and now["actor"] == "bob"
        assert f"authenticated by API token {bob['id']}" in now["reason"]
        assert "signed on behalf of bob" in now["reason"] and now["reason"].startswith("x [")
        event, signer = home.recorded(done["event_id"])
        assert event.envelope.actor == "bob" and signer == "deploy"
        # revoked: the next request with it is refused, no restart
        assert home.keel("audit", "tokens", "revoke", bob["id"]).returncode == 0
        r = httpx.get(f"{url}/v1/families", headers=bearer(bob["token"]))
        assert r.status_code == 401, r.text


def test_an_act_token_signs_with_the_persons_key_where_the_server_holds_it(home: Home) -> None:
    project = Path(home.demo["project"])
    emits = json.dumps(RELEASE)  # a release role, as `KEEL_IDENTITY=alice keel deploy` needs
    project.write_text(project.read_text() + f"\n[identities.alice]\nemits = {emits}\n")
    made = home.keel("keys", "create", "alice")
    assert made.returncode == 0, made.stderr
    alice = home.token("act", "alice")
    assert alice["signing"].startswith("signed by alice's key")
    with home.service() as url:
        model = home.candidate(url)
        r = httpx.post(
            f"{url}/v1/models/{model}/deploy",
            json=OVERRIDE,
            headers=bearer(alice["token"]),
            timeout=120,
        )
        assert r.status_code == 200, r.text
        auth = r.json()["authenticated"]
        assert auth["signed_by"] == "alice" and auth["on_behalf"] is False
        now = serving(url, LATER)
        assert now["actor"] == "alice" and "signed by alice's key" in now["reason"]
        event, signer = home.recorded(r.json()["event_id"])
        assert event.envelope.actor == "alice" and signer == "alice"


def test_a_cookie_session_cannot_act_from_another_origin(home: Home) -> None:
    bob = home.token("act", "bob")
    with home.service() as url:
        model = home.candidate(url)
        path = f"{url}/v1/models/{model}/deploy"
        other = f"http://127.0.0.1:{free_port()}"  # same site, another origin
        login = httpx.post(url + "/console/login", data={"token": bob["token"]})
        assert login.status_code == 303, login.text
        jar = {"keel_console": login.cookies["keel_console"]}
        refused = [
            {},  # a cookie alone: no Origin, no Referer
            {"Origin": other},
            {"Referer": other + "/evil.html"},
            {"Origin": url, "Sec-Fetch-Site": "same-site"},
        ]
        for headers in refused:
            r = httpx.post(path, json=OVERRIDE, cookies=jar, headers=headers, timeout=60)
            assert r.status_code == 403 and "cross-site request refused" in r.text, (
                headers,
                r.text,
            )
        assert serving(url, LATER)["model_id"] != model
        # a read token's cookie cannot act from anywhere
        r = httpx.post(path, json=OVERRIDE, cookies={"keel_console": READ}, headers={"Origin": url})
        assert r.status_code == 403 and "needs a token of scope act" in r.text, r.text
        # another origin cannot log a browser in (login CSRF)
        r = httpx.post(url + "/console/login", data={"token": READ}, headers={"Origin": other})
        assert r.status_code == 403 and "keel_console" not in r.cookies
        # the server's own origin may (the console itself has no such form; a script may)
        r = httpx.post(path, json=OVERRIDE, cookies=jar, headers={"Origin": url}, timeout=120)
        assert r.status_code == 200, r.text
        assert serving(url, LATER)["actor"] == "bob"


def test_console_pages_forbid_framing_and_foreign_scripts(home: Home) -> None:
    with home.service() as url:
        jar = {"keel_console": READ}
        for page in (
            "/console/login",
            "/console/",
            "/console/health",
            f"/console/timeline/{FAMILY}",
        ):
            r = httpx.get(url + page, cookies=jar, timeout=60)
            assert r.status_code == 200, (page, r.text[:300])
            policy = r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy, policy
            assert r.headers["x-frame-options"] == "DENY"
            scripts = re.findall(r"<script([^>]*)>", r.text)
            nonce = re.search(r"script-src 'nonce-([^']+)'", policy)
            for attrs in scripts:  # every script the page has carries this response's nonce
                assert nonce is not None and f'nonce="{nonce.group(1)}"' in attrs, (page, attrs)
        nonces = set()
        for _ in range(2):  # a nonce is per response: one seen before proves nothing
            r = httpx.get(url + "/console/health", cookies=jar, timeout=60)
            nonces.add(re.findall(r'<script nonce="([^"]+)"', r.text)[0])
        assert len(nonces) == 2


def waited(url: str, at: str, ok: Any) -> dict[str, Any]:
    """On Kafka the service answers from its replica of the views, folded by a watcher: the
    answer at `at` once `ok` holds for it."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = httpx.get(f"{url}/v1/serving/{FAMILY}/prod", params={"at": at}, headers=bearer(READ))
        if r.status_code == 200 and r.json()["freshness"]["lag"] == 0:
            found = r.json()["serving"]
            if found and ok(found):
                return dict(found)
        time.sleep(0.5)
    pytest.fail(f"the audit service's views did not catch up: {r.text[:300]}")


@pytest.mark.integration
def test_scopes_on_kafka_and_redis(tmp_path: Path, kafka_bootstrap: str, redis_url: str) -> None:
    """The same refusal and the same record on the distributed backend, where the service
    acts through the broker and answers from its replica."""
    from keel.log.kafka import new_prefix

    prefix = new_prefix()
    views = redis_url.rsplit("/", 1)[0] + "/5?namespace=" + prefix.replace(".", ":")
    demo, env = demo_home(tmp_path / "k", f"kafka://{kafka_bootstrap}?prefix={prefix}", views)
    home = Home(demo, env)
    bob = home.token("act", "bob")
    july = demo["answers"]["serving_prod_at"]["serving"]
    model = july["previous_model_id"]
    with home.service() as url:
        before = waited(url, LATER, lambda s: s["model_id"] != model)
        r = httpx.post(
            f"{url}/v1/models/{model}/deploy", json=OVERRIDE, headers=bearer(READ), timeout=60
        )
        assert r.status_code == 403 and "needs a token of scope act" in r.text, r.text
        r = httpx.post(
            f"{url}/v1/models/{model}/deploy",
            json=OVERRIDE,
            headers=bearer(bob["token"]),
            timeout=300,
        )
        assert r.status_code == 200, r.text
        assert r.json()["authenticated"]["on_behalf"] is True
        now = waited(url, LATER, lambda s: s["model_id"] == model)
        assert now["actor"] == "bob" and f"API token {bob['id']}" in now["reason"]
        assert before["event_id"] != now["event_id"]
