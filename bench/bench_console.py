"""Console page timings (issue 15): time to first render of each page in a real browser
(Debian's Chromium driven by Playwright), served by `keel service run audit` on the demo home
grown with synthetic registry history (bench_flat_cost's: promotion + deployment pairs in prod,
one a minute through 2020), at 1k and 1M events.

Per page: first contentful paint and DOMContentLoaded from the browser's own timing entries,
and the server's share (responseEnd), medians of `--repeat` loads after one warm-up. The
baseline in the same run is `/healthz` loaded the same way (the floor of a round trip through
the browser and the service). Each page's data comes from the views (index ranges and document
reads), so the target is flat: each page at 1M within 1.3x of itself at 1k.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.bench_flat_cost import FAMILY, demo_home, grow
from bench.common import report
from keel.client import Client
from keel.settings import Settings

KEEL = str(Path(sys.executable).with_name("keel"))
TOKEN = "bench-console"
FCP = (
    "(() => { const p = performance.getEntriesByType('paint')"
    ".find(e => e.name === 'first-contentful-paint');"
    " const n = performance.getEntriesByType('navigation')[0];"
    " return [p ? p.startTime : null, n.responseEnd, n.domContentLoadedEventEnd]; })()"
)


def pages(settings: Settings) -> dict[str, str]:
    with Client(settings) as k:
        july = k.serving(FAMILY, "prod", "2025-07-01T00:00:00Z").serving
        assert july is not None
        first = [d for d in k.history(FAMILY, 0, 1000) if d.env == "prod" and d.reason != "bench"]
    model = july.model_id
    return {
        "floor: /healthz": "/healthz",
        "home": "/console/",
        "timeline (demo year)": f"/console/timeline/{FAMILY}",
        "timeline (2 days, 2,880 deployments)": (
            f"/console/timeline/{FAMILY}?from=2020-03-01&to=2020-03-03"
        ),
        "timeline + cursor in 2020": f"/console/timeline/{FAMILY}?at=2020-06-01T00:00:00Z",
        "why (July 1)": f"/console/why/{FAMILY}/prod?at=2025-07-01T00:00:00Z",
        "lineage (depth 3)": f"/console/lineage/{model}?depth=3",
        "diff": f"/console/diff?a={first[0].model_id}&b={model}",
        "trail health": "/console/health",
        "search (ID prefix)": f"/console/search?q={model[:10]}",
    }


def serve(settings: Settings, port: int) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(
        KEEL_HOME=str(settings.home),
        KEEL_PROJECT=str(settings.project),
        KEEL_KEYS_DIR=str(settings.keys_dir),
        KEEL_API_TOKEN=TOKEN,
    )
    proc = subprocess.Popen(
        [KEEL, "service", "run", "audit", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("the audit service did not come up")


def measure(
    settings: Settings, port: int, repeat: int, paths: dict[str, str]
) -> dict[str, dict[str, float]]:
    from tests.browser import Watched, chromium

    proc = serve(settings, port)
    out: dict[str, dict[str, float]] = {}
    try:
        with chromium() as browser:
            w = Watched(browser)
            base = f"http://127.0.0.1:{port}"
            w.page.goto(base + "/console/login")
            w.page.fill("#token", TOKEN)
            w.page.click("#login")
            w.page.wait_for_url(base + "/console/")
            for name, path in paths.items():
                fcp, server, dcl = [], [], []
                for i in range(repeat + 1):
                    w.page.goto(base + path, wait_until="domcontentloaded")
                    w.page.wait_for_timeout(50)  # let the paint entry land
                    p, r, d = w.page.evaluate(FCP)
                    if i:  # the first load warms caches: not counted
                        fcp.append(p if p is not None else d)
                        server.append(r)
                        dcl.append(d)
                out[name] = {
                    "first_paint_ms": statistics.median(fcp),
                    "server_ms": statistics.median(server),
                    "dom_ready_ms": statistics.median(dcl),
                }
                print(name, out[name], flush=True)
            assert w.errors == [], w.errors
            w.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1000,1000000")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--port", type=int, default=18931)
    args = ap.parse_args(argv)
    by_size: list[tuple[int, dict[str, dict[str, float]]]] = []
    with tempfile.TemporaryDirectory(prefix="keel-bench-console-") as tmp:
        settings = demo_home(Path(tmp))
        have = 0
        paths = pages(settings)  # the demo's models, found before the history buries them
        for size in (int(s) for s in args.sizes.split(",")):
            t0 = time.perf_counter()
            have = grow(settings, have, size)
            print(f"{have} events ({time.perf_counter() - t0:.0f} s to build)", flush=True)
            by_size.append((have, measure(settings, args.port, args.repeat, paths)))
    (small_n, small), (big_n, big) = by_size[0], by_size[-1]
    floor_small, floor_big = small["floor: /healthz"], big["floor: /healthz"]
    rows: list[dict[str, Any]] = []
    for name in small:
        rows.append(
            {
                "page": name,
                f"first paint ms @{small_n}": round(small[name]["first_paint_ms"], 1),
                f"first paint ms @{big_n}": round(big[name]["first_paint_ms"], 1),
                "1M/1k": round(big[name]["first_paint_ms"] / small[name]["first_paint_ms"], 2),
                f"server ms @{big_n}": round(big[name]["server_ms"], 1),
                "x floor @1M": round(big[name]["first_paint_ms"] / floor_big["first_paint_ms"], 1),
            }
        )
    report(
        "console",
        f"console pages in Chromium: first contentful paint, median of {args.repeat} "
        f"(floor: /healthz, {floor_small['first_paint_ms']:.0f} / "
        f"{floor_big['first_paint_ms']:.0f} ms)",
        rows,
        {"target": "each page at 1M within 1.3x of itself at 1k (column 1M/1k)"},
    )


if __name__ == "__main__":
    main()
