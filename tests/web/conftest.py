"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download), a live Atryum
on SQLite next to the ValidMind simulator, and a page that fails the test on console errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, expect, sync_playwright

from atryum.config import Config
from atryum.db import migrate
from atryum.db.engine import make_engine
from tests.support import LiveServer, assert_histories_rebuild, make_config
from tests.web.driver import HEIGHT, UI, WIDTHS

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(
            f"the browser tests need Debian's Chromium at {CHROMIUM}, which is missing: install it "
            "with `apt-get update && apt-get install -y chromium` (.ci/run does this). Never run "
            "`playwright install`: the tests use the system browser."
        )
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[sa.Engine]:
    """Browser tests run on SQLite only; the pages' reads are tested on both dialects."""
    engine = make_engine(f"sqlite:///{tmp_path / 'ui.db'}")
    migrate.upgrade(engine)
    yield engine
    assert_histories_rebuild(engine)
    engine.dispose()


@pytest.fixture
def atryum(
    sqlite_engine: sa.Engine,
    sim: Any,
    sim_config: Callable[..., Config],
    live_atryum: Callable[..., LiveServer],
) -> Iterator[LiveServer]:
    """Atryum over real HTTP, connected to the simulator."""
    with live_atryum(sim_config(sim.url), sqlite_engine) as server:
        yield server


@pytest.fixture
def open_ui(browser: Browser) -> Iterator[Callable[[LiveServer], UI]]:
    """`open_ui(server)` → a fresh page on that server; console errors fail the test."""
    opened: list[UI] = []
    contexts = []

    def start(server: LiveServer) -> UI:
        context = browser.new_context(viewport={"width": WIDTHS[0], "height": HEIGHT})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        ui = UI(context.new_page(), server.url)
        opened.append(ui)
        return ui

    yield start
    for context in contexts:
        context.close()
    errors = [e for ui in opened for e in ui.unexpected_console_errors()]
    assert errors == [], f"browser console errors: {errors}"


@pytest.fixture
def ui(atryum: LiveServer, open_ui: Callable[[LiveServer], UI]) -> UI:
    # `atryum` first: the server outlives the pages, so no page sees it go away
    return open_ui(atryum)


@pytest.fixture
def offline(
    sqlite_engine: sa.Engine, live_atryum: Callable[..., LiveServer]
) -> Iterator[LiveServer]:
    """Atryum with no ValidMind configured (the gateway needs none)."""
    with live_atryum(make_config(), sqlite_engine) as server:
        yield server


@pytest.fixture
def page_ui(offline: LiveServer, open_ui: Callable[[LiveServer], UI]) -> UI:
    return open_ui(offline)
