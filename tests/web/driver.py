"""A thin driver over a Playwright page: Atryum URLs, screenshots at both widths, page checks."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import ConsoleMessage, Error, Locator, Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
WIDTHS = (1280, 390)
HEIGHT = 900

# Inputs that have neither a <label> nor an aria-label (every form control must be labelled).
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
  .filter((e) => e.type !== "hidden" && !e.closest("template, dialog:not([open])"))
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
  .map((e) => e.outerHTML)"""


class UI:
    def __init__(self, page: Page, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.console_errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []
        page.on("console", self._console)
        page.on("pageerror", self._page_error)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(f"{message.text} ({self.page.url})")

    def _page_error(self, error: Error) -> None:
        self.console_errors.append(f"uncaught: {error.message} ({self.page.url})")

    def allow_console_error(self, pattern: str) -> None:
        """A test that provokes a server error expects the browser to log the failed request."""
        self._allowed.append(re.compile(pattern))

    def unexpected_console_errors(self) -> list[str]:
        return [e for e in self.console_errors if not any(p.search(e) for p in self._allowed)]

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def nav(self, name: str) -> None:
        """Follow a link of the header's main navigation (a link may carry a count: `(3)`)."""
        nav = self.page.get_by_role("navigation", name="Main")
        self.follow(nav.get_by_role("link", name=re.compile(rf"^{re.escape(name)}( \(\d+\))?$")))

    def follow(self, link: Locator) -> None:
        """Click a link and wait for the new page to load. The click returns once the page is
        committed, but its deferred scripts (the handlers a test uses next) run just before
        `load`: on a loaded machine a test could otherwise click a button nothing listens to."""
        link.click()
        self.page.wait_for_load_state("load")

    def tab_order(self, presses: int) -> list[str]:
        """The ids focused from the current element on, pressing Tab `presses` times."""
        focused = "document.activeElement.id"
        order = [self.page.evaluate(focused)]
        for _ in range(presses):
            self.page.keyboard.press("Tab")
            order.append(self.page.evaluate(focused))
        return order

    def shoot(self, name: str) -> None:
        """Screenshots at desktop and phone width; each width must fit without sideways scrolling
        and every form control must be labelled."""
        assert self.page.evaluate(UNLABELLED) == [], f"unlabelled form controls on {name}"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width in WIDTHS:
            self.page.set_viewport_size({"width": width, "height": HEIGHT})
            overflow = self.page.evaluate("document.documentElement.scrollWidth")
            assert overflow <= width, f"{name} is {overflow} px wide at a {width} px viewport"
            self.page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
        self.page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
