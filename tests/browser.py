"""Pages opened in a real browser: Debian's chromium (`apt-get install chromium`; .ci/run installs it), driven by
Playwright with the system browser's path (Playwright's own browser download cannot run here). Screenshots go to
test-output/screenshots/ under the checkout, kept as the test run's artefacts."""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Seen:
    """What the browser reported while the page loaded."""

    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)


@contextmanager
def browser_page():
    """A fresh page of a headless chromium, and what it reports."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright

    seen = Seen()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda message: seen.console_errors.append(message.text)
                    if message.type == "error" else None)
            page.on("pageerror", lambda error: seen.console_errors.append(str(error)))
            page.on("requestfailed", lambda request: seen.failed_requests.append(request.url))
            yield page, seen
        finally:
            browser.close()


def broken_images(page) -> list[str]:
    """The sources of the <img> elements that did not load (no pixels); an inline image by its first characters."""
    return page.eval_on_selector_all(
        "img", "els => els.filter(e => !(e.complete && e.naturalWidth > 0)).map(e => e.src.slice(0, 120))")


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
