"""A real browser for the console's tests: Playwright for Python driving Debian's Chromium
(`executable_path`; browser downloads are impossible here). No Chromium is a failure, not a
skip: `make test` installs it (deploy/components.py). Screenshots go to test-output/."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHOTS = Path(os.environ.get("KEEL_TEST_OUTPUT", ROOT / "test-output")) / "console"


def chromium_path() -> str:
    found = os.environ.get("KEEL_CHROMIUM") or shutil.which("chromium")
    found = found or shutil.which("chromium-browser")
    assert found, "Chromium is missing: run `make components` (apt-get install chromium)"
    return found


@contextmanager
def chromium() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # Chromium will not sandbox as root
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=args)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """A page whose JavaScript errors (console errors, uncaught exceptions, failed loads) are
    collected: a console test asserts there are none."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 900})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()
