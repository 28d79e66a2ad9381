"""Browser-test harness: real headless Chromium (Debian's, never a downloaded one) driving the
app on pytest-django's live server.

Select these tests with `-m browser`; they are part of the normal run, not skipped.
"""

import os
import re
from pathlib import Path

import pytest

# Playwright's sync API runs an asyncio loop in this thread; Django refuses ORM calls from a
# thread with a running loop unless told they are safe (they are: the loop is Playwright's).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright.sync_api import Page, sync_playwright  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
PASSWORD = "correct-horse-9"  # what tests.conftest.make_user gives everyone
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


# Package scope, not session: Playwright's sync API keeps an event loop running in this thread
# while the browser is open, and asyncio.run() in the tests collected after these would fail.
@pytest.fixture(scope="package")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@pytest.fixture
def live_url(live_server, settings) -> str:
    # The live server speaks plain HTTP: secure-only cookies would never come back.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    return live_server.url


def _new_page(browser, base_url: str, viewport: dict) -> Page:
    context = browser.new_context(base_url=base_url, viewport=viewport, locale="en-GB")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return page


@pytest.fixture
def page(browser, live_url):
    page = _new_page(browser, live_url, DESKTOP)
    yield page
    page.context.close()


@pytest.fixture
def phone_page(browser, live_url):
    page = _new_page(browser, live_url, PHONE)
    yield page
    page.context.close()


def login(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/$"))


def logout(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/"))


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page PNG under test-artifacts/screenshots/ for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
