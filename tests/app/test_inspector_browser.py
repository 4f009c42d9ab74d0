"""The inspector page in a real headless Chromium: rows, a filter, map points, a screenshot.

Uses Debian's chromium (installed by ./scripts/test) through Playwright's executable_path; the page is
served by a real uvicorn on a free loopback port.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from app_helpers import make_settings
from lead_helpers import Keys

from app.main import create_app
from app.platform.settings import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (./scripts/test installs it)"
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """The app under a real uvicorn on a free loopback port, ready; its base URL."""
    app = create_app(settings)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    uvicorn_server = uvicorn.Server(config)
    thread = threading.Thread(target=uvicorn_server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        pytest.fail("the service did not become ready within 60 s")
    try:
        yield base
    finally:
        uvicorn_server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("browser") / "lists.sqlite3"
    with serving(make_settings(database_url=f"sqlite:///{database}")) as base:
        yield base


def test_inspector_page_in_chromium(server: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{server}/inspector?city=chicago&date=2014-08-30&limit=40", timeout=60_000)

        rows = page.locator("#ranked tbody tr")
        assert rows.count() == 40
        assert page.locator("#ranked tbody tr").first.locator("td").first.inner_text() == "1"
        assert page.locator("#map circle").count() >= 35
        assert page.locator("#map path").count() == 77
        page.screenshot(path=str(tmp_path / "inspector.png"), full_page=True)

        # Apply a filter the way an inspector would: pick from the list and press the button.
        page.select_option("#facility_type", "Grocery Store")
        page.select_option("#min_tier", "medium")
        page.click("#apply")
        page.wait_for_load_state("load")
        assert "facility_type=Grocery+Store" in page.url
        types = page.locator("#ranked tbody tr td:nth-child(2) small").all_inner_texts()
        assert types and all("Grocery Store" in text for text in types)
        tiers = page.locator("#ranked tbody td.tier").all_inner_texts()
        assert tiers and set(tiers) <= {"HIGH", "MEDIUM"}
        assert page.locator("#map circle").count() == len(tiers)
        csv_link = page.locator("#csv-link").get_attribute("href")
        assert csv_link is not None and "format=csv" in csv_link
        page.screenshot(path=str(tmp_path / "inspector-filtered.png"), full_page=True)
        browser.close()

    assert (tmp_path / "inspector.png").stat().st_size > 10_000
    csv_text = httpx.get(f"{server}{csv_link}").text
    assert csv_text.count("\n") == len(tiers) + 1


def test_inspector_page_behind_a_key_in_chromium(tmp_path: Path) -> None:
    """CIVICRISK_INSPECTOR_AUTH=key: the browser is refused until it has the key, then sends it (as the
    password of HTTP Basic, after the prompt) with the page and with the CSV link on it."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    keys = Keys(f"sqlite:///{tmp_path / 'lists.sqlite3'}")
    settings = make_settings(inspector_auth="key", database_url=keys.database_url)
    page_url = "/inspector?city=chicago&date=2014-08-30&limit=20"
    with serving(settings) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        # Headless, the browser cannot show its prompt: Chromium gives up on the challenge.
        with pytest.raises(PlaywrightError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            browser.new_page().goto(f"{base}{page_url}", timeout=60_000)

        credentials = {"username": "inspector", "password": keys.inspections}
        signed_in = browser.new_context(http_credentials=credentials)  # type: ignore[arg-type]
        page = signed_in.new_page()
        answer = page.goto(f"{base}{page_url}", timeout=60_000)
        assert answer is not None and answer.status == 200
        assert page.locator("#ranked tbody tr").count() == 20
        assert page.locator("#map circle").count() >= 15
        csv_link = page.locator("#csv-link").get_attribute("href")
        assert csv_link is not None
        download = signed_in.request.get(f"{base}{csv_link}")
        assert download.status == 200 and download.text().count("\n") == 21
        assert httpx.get(f"{base}{csv_link}").status_code == 401  # the same link, without the key
        page.screenshot(path=str(tmp_path / "inspector-signed-in.png"), full_page=True)
        browser.close()
