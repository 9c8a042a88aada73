"""Swagger UI and Redoc in headless Chromium against the running API: the payout operations are
rendered, nothing is requested from another origin (the pages' Content-Security-Policy blocks
only what would have been), and a screenshot of each page is kept in artifacts/screenshots/."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, sync_playwright

from tests.contract.conftest import LiveApi
from tests.support.processes import ROOT
from tests.support.tools import tool_missing

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = ROOT / "scripts" / "install-chromium.sh"
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RENDER_TIMEOUT_MS = 30_000
BLOCKED_BY_POLICY = "csp"  # Request.failure of a request the page policy refused
PAYOUT_PATHS = {"/api/payouts/", "/api/payouts/{id}/", "/api/payouts/{id}/events/"}
PAYOUT_OPERATIONS = {
    "listPayouts",
    "createPayout",
    "getPayout",
    "updatePayout",
    "deletePayout",
    "listPayoutEvents",
}


def ensure_chromium() -> None:
    """`make test` installs it (system-deps); a bare pytest run tries the same script once."""
    if CHROMIUM.exists():
        return
    result = subprocess.run(
        [str(INSTALL_SCRIPT)], capture_output=True, text=True, timeout=900, check=False
    )
    if not CHROMIUM.exists():
        tool_missing(
            f"Debian chromium could not be installed by {INSTALL_SCRIPT.name} "
            f"(exit {result.returncode}): {result.stderr.strip()[-300:]}"
        )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    ensure_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageVisit:
    """A page opened on the live API, recording its requests, JS errors and CSP violations."""

    def __init__(self, browser: Browser, live_api: LiveApi, path: str) -> None:
        self.live_api = live_api
        self.page: Page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.requests: list[Request] = []
        self.errors: list[str] = []
        self.blocked: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._on_console)
        response = self.page.goto(live_api.url + path)
        assert response is not None and response.status == 200

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            self.blocked.append(message.text)

    def foreign_requests(self) -> list[str]:
        """Requests to another origin that the browser did not refuse before sending."""
        local = (self.live_api.url + "/", "data:", "blob:")
        return [
            f"{r.url} ({r.failure})"
            for r in self.requests
            if not r.url.startswith(local) and r.failure != BLOCKED_BY_POLICY
        ]

    def screenshot(self, name: str, showing: str) -> Path:
        """A screenshot of the viewport scrolled to the element `showing`."""
        self.page.locator(showing).first.evaluate("element => element.scrollIntoView()")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


def test_swagger_ui_renders_the_payout_operations(browser: Browser, live_api: LiveApi):
    visit = PageVisit(browser, live_api, "/api/schema/swagger/")
    visit.page.wait_for_selector(".opblock-summary-path", timeout=RENDER_TIMEOUT_MS)
    paths = {
        element.get_attribute("data-path")
        for element in visit.page.query_selector_all(".opblock-summary-path")
    }
    assert paths >= PAYOUT_PATHS
    operation_ids = {
        element.get_attribute("id") for element in visit.page.query_selector_all(".opblock")
    }
    assert {f"operations-payouts-{op}" for op in PAYOUT_OPERATIONS} <= operation_ids
    assert visit.page.locator(".btn.authorize").count() == 1  # the bearer security scheme
    screenshot = visit.screenshot("swagger-ui", showing="#operations-tag-payouts")
    assert screenshot.stat().st_size > 10_000
    assert visit.errors == []
    assert visit.blocked == []
    assert visit.foreign_requests() == []


def test_redoc_renders_the_payout_operations(browser: Browser, live_api: LiveApi):
    visit = PageVisit(browser, live_api, "/api/schema/redoc/")
    visit.page.wait_for_selector(
        "[data-section-id^='tag/payouts/operation/']", timeout=RENDER_TIMEOUT_MS
    )
    sections = {
        element.get_attribute("data-section-id")
        for element in visit.page.query_selector_all("[data-section-id]")
    }
    assert {f"tag/payouts/operation/{op}" for op in PAYOUT_OPERATIONS} <= sections
    text = visit.page.inner_text("body")
    assert all(path in text for path in PAYOUT_PATHS)
    screenshot = visit.screenshot(
        "redoc", showing="[data-section-id='tag/payouts/operation/createPayout']"
    )
    assert screenshot.stat().st_size > 10_000
    assert visit.errors == []
    # Redoc's sidebar links a CDN logo: the policy refuses it; nothing else may be refused.
    assert all("img-src" in message for message in visit.blocked), visit.blocked
    assert visit.foreign_requests() == []
