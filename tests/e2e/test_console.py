"""The web console in a real browser (Debian's Chromium driven by Playwright), served by
`keel service run audit` on a demo home: the demo's story on the pages (the July 1 model, the
rejected candidates, the quarantined March records), the time cursor and the as-of control, the
lineage graph, the diff, the live tail; the token is required; no JavaScript errors. Screenshots
of every page go to test-output/console/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from keel_services.entrypoints.demo.story import monthly_batches, write_csv
from tests.browser import Watched, chromium
from tests.demo_home import demo_home
from tests.e2e.test_http_services import free_port, wait_up

pytestmark = pytest.mark.e2e
KEEL = str(Path(sys.executable).with_name("keel"))
TOKEN = "console-t0k"
FAMILY = "breast_cancer"


@contextmanager
def audit_service(env: dict[str, str]) -> Iterator[str]:
    """`keel service run audit` on `env` with the token; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        [KEEL, "service", "run", "audit", "--port", str(port)],
        env={**env, "KEEL_API_TOKEN": TOKEN},
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


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module: Playwright's sync API runs one event loop per thread, so a
    second one cannot start while this is open."""
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[dict[str, Any]]:
    work = tmp_path_factory.mktemp("console")
    demo, env = demo_home(work / "demo")
    with audit_service(env) as url:
        yield {"demo": demo, "env": env, "url": url, "browser": browser, "work": work}


def caught_up(url: str, model: str) -> None:
    """On Kafka the service answers from its own replica of the views, folded by a watcher
    after it starts: wait until that replica has the whole story."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        r = httpx.get(
            f"{url}/v1/serving/{FAMILY}/staging",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        if r.status_code == 200 and r.json()["freshness"]["lag"] == 0:
            prod = httpx.get(
                f"{url}/v1/serving/{FAMILY}/prod",
                params={"at": "2025-07-01T00:00:00Z"},
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=30,
            ).json()
            if (prod.get("serving") or {}).get("model_id") == model:
                return
        time.sleep(0.5)
    pytest.fail(f"the audit service's views did not catch up with the log: {r.text[:300]}")


def logged_in(s: dict[str, Any]) -> Watched:
    w = Watched(s["browser"])
    w.page.goto(s["url"] + "/console/")
    assert w.page.url.endswith("/console/login")
    w.page.fill("#token", TOKEN)
    w.page.click("#login")
    w.page.wait_for_url(s["url"] + "/console/")
    return w


def july(s: dict[str, Any]) -> str:
    return str(s["demo"]["answers"]["serving_prod_at"]["serving"]["model_id"])


def test_the_token_is_required(served: dict[str, Any]) -> None:
    url = served["url"]
    assert httpx.get(url + "/v1/families", timeout=30).status_code == 401
    r = httpx.get(url + "/console/timeline/breast_cancer", timeout=30)
    assert r.status_code == 303 and r.headers["location"] == "/console/login"
    r = httpx.get(url + "/console/", cookies={"keel_console": "wrong"}, timeout=30)
    assert r.status_code == 303
    assert httpx.get(url + "/console/tail", timeout=30).status_code == 303
    w = Watched(served["browser"])
    try:
        w.page.goto(url + "/console/why/breast_cancer/prod")
        assert w.page.url.endswith("/console/login")
        w.page.fill("#token", "not-the-token")
        w.page.click("#login")
        assert "wrong token" in w.page.inner_text("#login-error")
        w.shot("login-refused")
        assert w.page.context.cookies() == []
    finally:
        w.close()


def test_the_timeline_answers_what_served_when(served: dict[str, Any]) -> None:
    w = logged_in(served)
    try:
        home = w.page.inner_text("main")
        assert FAMILY in home and "prod" in home
        w.shot("home")
        w.page.goto(f"{served['url']}/console/timeline/{FAMILY}?at=2025-07-01T00:00:00Z")
        bars = w.page.locator("a.bar")
        assert bars.count() == 10  # 6 staging deployments, 4 prod
        assert w.page.locator("a.mark[data-decision=rejected]").count() == 2
        served_prod = w.page.inner_text("#served-at tr[data-env=prod] a.model")
        assert served_prod == july(served)
        assert w.page.locator("#cursor").count() == 1
        w.shot("timeline")
        # as we knew it at R: the demo recorded everything on the day it ran (all backdated),
        # so as known on 2026-01-01 nothing had been recorded as serving on July 1
        w.page.fill("#as_of", "2026-01-01T00:00:00")
        w.page.click("#controls button")
        w.page.wait_for_url("**as_of=2026-01-01**")
        assert "nothing served" in w.page.inner_text("#served-at tr[data-env=prod]")
        assert w.page.locator("a.bar").count() == 0
        w.shot("timeline-as-of")
        # the time cursor: a click on the chart (left of every bar) asks what served then
        w.page.goto(f"{served['url']}/console/timeline/{FAMILY}")
        box = w.page.locator("#timeline").bounding_box()
        assert box is not None
        w.page.mouse.click(box["x"] + 100, box["y"] + 60)
        w.page.wait_for_url("**at=**")
        assert "nothing served" in w.page.inner_text("#served-at tr[data-env=prod]")
        # clicking a bar opens its why
        w.page.goto(f"{served['url']}/console/timeline/{FAMILY}")
        w.page.locator(f"a.bar[data-env=prod][data-model='{july(served)}']").click()
        w.page.wait_for_url("**/console/why/breast_cancer/prod**")
        assert w.page.inner_text("#served-model") == july(served)
        assert w.errors == []
    finally:
        w.close()


def test_why_shows_gates_eval_features_and_quarantined_data(served: dict[str, Any]) -> None:
    w = logged_in(served)
    try:
        w.page.goto(f"{served['url']}/console/why/{FAMILY}/prod?at=2025-07-01T00:00:00Z")
        assert w.page.inner_text("#served-model") == july(served)
        gates = w.page.inner_text("#gates")
        assert "beats_incumbent" in gates and "passed" in gates
        assert w.page.locator("#calibration tr").count() == 11  # header + 10 bins
        assert "roc_auc" in w.page.inner_text("#metrics")
        assert w.page.locator("table.stats tr").count() > 20
        march = w.page.locator("#datasets tr", has_text="2025-03")
        assert "4" in march.locator("td").nth(5).inner_text()
        assert "range.min on mean_area" in march.inner_text()
        w.shot("why")
        # a rejected candidate, from the timeline's mark to its model page
        w.page.goto(f"{served['url']}/console/timeline/{FAMILY}")
        w.page.locator("a.mark[data-decision=rejected]").first.click()
        w.page.wait_for_url("**/console/model/**")
        row = w.page.locator("#decisions tr", has_text="rejected")
        assert "incumbent" in row.inner_text() and "prod" in row.inner_text()
        w.shot("model-rejected")
        assert w.errors == []
    finally:
        w.close()


def test_lineage_graph_and_diff(served: dict[str, Any]) -> None:
    w = logged_in(served)
    first = next(p["model_id"] for p in served["demo"]["promotions"] if p["env"] == "prod")
    try:
        w.page.goto(f"{served['url']}/console/lineage/{july(served)[:12]}?depth=2")
        kinds = set(w.page.locator("a.node").evaluate_all("ns => ns.map(n => n.dataset.kind)"))
        assert {"model", "feature_set", "dataset"} <= kinds
        shallow = w.page.locator("a.node").count()
        w.shot("lineage")
        w.page.click("#deeper")
        w.page.wait_for_url("**depth=3**")
        assert w.page.locator("a.node").count() > shallow
        w.page.goto(f"{served['url']}/console/diff?a={first[:12]}&b={july(served)[:12]}")
        metrics = w.page.inner_text("#diff-metrics")
        assert "roc_auc" in metrics and "+0.0101" in metrics
        w.shot("diff")
        # search by ID prefix and by environment
        w.page.fill("#search", july(served)[:10])
        w.page.press("#search", "Enter")
        w.page.wait_for_url("**/console/search**")
        assert "model" in w.page.inner_text("#hits")
        w.page.goto(f"{served['url']}/console/search?q=prod")
        w.page.locator("#hits a", has_text="why it serves now").click()
        w.page.wait_for_url("**/console/why/breast_cancer/prod")
        assert w.errors == []
    finally:
        w.close()


def test_trail_health_and_the_live_tail(served: dict[str, Any]) -> None:
    w = logged_in(served)
    try:
        w.page.goto(f"{served['url']}/console/health")
        assert "ModelDeployed" in w.page.inner_text("#counts")
        assert "at " in w.page.inner_text("#checkpoint")
        w.page.wait_for_selector("#tail-status:has-text('caught up')")
        before = w.page.locator(".tail-line").count()
        assert before > 0  # the newest events first
        # a new event while the page watches: an ingest of ten records
        rows = monthly_batches()[1][5][:10]
        path = write_csv(served["work"] / "late.csv", rows)
        done = subprocess.run(
            [KEEL, "ingest", str(path), "--family", FAMILY, "--at", "2026-01-05"],
            env=served["env"],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        # the ingest's events may reach the page in more than one push: wait for the one
        # this test is about, not just for the first new line
        deadline = time.monotonic() + 60
        lines = w.page.locator(".tail-line").all_inner_texts()
        while time.monotonic() < deadline and not any(
            "DatasetIngested" in x for x in lines[before:]
        ):
            w.page.wait_for_timeout(250)
            lines = w.page.locator(".tail-line").all_inner_texts()
        assert len(lines) > before and any("DatasetIngested" in x for x in lines[before:])
        w.shot("health")
        w.page.click("#verify-now")
        w.page.wait_for_selector("#verified")
        assert "Verified: no problems" in w.page.inner_text("#verified")
        assert w.errors == []
    finally:
        w.close()


@pytest.mark.integration
def test_the_console_on_kafka_and_redis(
    tmp_path: Path, kafka_bootstrap: str, redis_url: str, browser: Any
) -> None:
    """The same pages on the distributed backend: the audit service answers from its replica
    of the views and tails the broker."""
    from keel.log.kafka import new_prefix

    prefix = new_prefix()
    views = redis_url.rsplit("/", 1)[0] + "/4?namespace=" + prefix.replace(".", ":")
    demo, env = demo_home(tmp_path / "k", f"kafka://{kafka_bootstrap}?prefix={prefix}", views)
    with audit_service(env) as url:
        s = {"demo": demo, "url": url, "browser": browser}
        caught_up(url, july(s))
        w = logged_in(s)
        w.page.goto(f"{url}/console/timeline/{FAMILY}?at=2025-07-01T00:00:00Z")
        assert w.page.inner_text("#served-at tr[data-env=prod] a.model") == july(s)
        assert w.page.locator("a.bar").count() == 10
        w.page.goto(f"{url}/console/why/{FAMILY}/prod?at=2025-07-01T00:00:00Z")
        assert "beats_incumbent" in w.page.inner_text("#gates")
        w.page.goto(f"{url}/console/health")
        w.page.wait_for_selector(".tail-line")
        assert "ModelDeployed" in w.page.inner_text("#counts")
        w.shot("kafka-health")
        assert w.errors == []
        w.close()


def test_screenshots_are_written() -> None:
    from tests.browser import SHOTS

    assert os.path.isdir(SHOTS) and any(SHOTS.glob("*.png"))
