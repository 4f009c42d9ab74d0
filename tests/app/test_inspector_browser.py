"""The inspector page in a real headless Chromium: rows, a filter, map points, a screenshot.

Uses Debian's chromium (installed by ./scripts/test) through Playwright's executable_path; the page is
served by a real uvicorn on a free loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from app_helpers import make_settings, serving
from lead_helpers import Keys
from screens import CHROMIUM, CHROMIUM_ARGS

from app.main import create_app

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian chromium is not installed (./scripts/test installs it)"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("browser") / "lists.sqlite3"
    with serving(create_app(make_settings(database_url=f"sqlite:///{database}"))) as base:
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
    with serving(create_app(settings)) as base, sync_playwright() as playwright:
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


# --- issue #23: the page on a phone, the routes control, /docs offline, the screenshots ---------------


def _no_sideways_scroll(page: Any) -> tuple[int, int]:
    widths: tuple[int, int] = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    return widths


@pytest.mark.parametrize("width", [360, 400, 430])
def test_phone_layout_has_no_sideways_scroll_cards_and_the_map_below(server: str, width: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": 900})
        page.goto(f"{server}/inspector?city=chicago&date=2014-08-30&limit=30", timeout=60_000)
        scroll_width, client_width = _no_sideways_scroll(page)
        assert client_width == width and scroll_width <= width, (scroll_width, client_width)
        # Cards: no table header, each row a block of its own.
        assert not page.locator("#ranked thead").is_visible()
        assert (
            page.locator("#ranked tbody tr").first.evaluate("row => getComputedStyle(row).display") == "block"
        )
        # The map below the list, no wider than the screen.
        table, figure = page.locator("#ranked").bounding_box(), page.locator("figure.map").bounding_box()
        assert table is not None and figure is not None
        assert figure["y"] > table["y"] and figure["x"] >= 0 and figure["x"] + figure["width"] <= width
        # Large touch targets (the routes control opens with a tap).
        page.click("#routes-control summary")
        for control in ("#apply", "#city", "#date", "#make-routes", "#inspectors"):
            box = page.locator(control).bounding_box()
            assert box is not None and box["height"] >= 44, control
        # Print: the controls go, the list stays.
        page.emulate_media(media="print")
        assert not page.locator("form.filters").is_visible()
        assert not page.locator("#routes-control").is_visible()
        assert page.locator("#ranked tbody tr").first.is_visible()
        browser.close()


def test_routes_control_makes_routes_and_opens_a_sheet_on_a_phone(server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 400, "height": 900})
        page.goto(f"{server}/inspector?city=chicago&date=2014-08-30&limit=20", timeout=60_000)
        page.click("#routes-control summary")
        page.fill("#inspectors", "3")
        page.fill("#per_inspector", "5")
        page.click("#make-routes")
        page.wait_for_load_state("load")
        assert "inspectors=3" in page.url and "per_inspector=5" in page.url
        assert page.locator("#routes-map polyline").count() == 3
        assert page.locator("#routes tbody tr").count() == 3
        assert _no_sideways_scroll(page)[0] <= 400
        page.locator("a.route-sheet").first.click()
        page.wait_for_load_state("load")
        assert page.locator("#sheet-title").inner_text().startswith("Route 1 of 3")
        assert page.locator("#stops tbody tr").count() == 5
        assert (
            page.locator("#route-map polyline").count() == 1
            and page.locator("#route-map circle").count() == 5
        )
        assert _no_sideways_scroll(page)[0] <= 400
        csv_link = page.locator("#route-csv").get_attribute("href")
        assert csv_link is not None
        browser.close()
    sheet = httpx.get(f"{server}{csv_link}", timeout=30)
    assert sheet.status_code == 200 and sheet.text.count("\n") == 1 + 5


def test_docs_pages_render_with_no_other_host_reachable(server: str) -> None:
    """/docs and /redoc render their content while every request to another host is refused; and
    none is even attempted (their Content-Security-Policy stops ReDoc's vendor logo in the browser)."""
    from playwright.sync_api import sync_playwright

    elsewhere: list[str] = []

    def only_this_server(route: Any) -> None:
        if route.request.url.startswith(server):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.route("**/*", only_this_server)
        page.goto(f"{server}/docs", timeout=60_000)
        page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
        assert "civicrisk" in page.locator(".swagger-ui .info .title").inner_text()
        assert (
            page.locator(".opblock-summary-path", has_text="/v1/inspections/{city}/daily/routes").count() >= 1
        )
        page.goto(f"{server}/redoc", timeout=60_000)
        page.wait_for_selector("h1", timeout=60_000)
        assert "civicrisk" in page.locator("h1").first.inner_text()
        browser.close()
    assert elsewhere == []


def test_screenshots_are_taken_into_a_temporary_folder(server: str, tmp_path: Path) -> None:
    """The README's screenshots, taken as `tests/app/screens.py` takes them, here into tmp_path."""
    from playwright.sync_api import sync_playwright
    from screens import take

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        shots = take(server, tmp_path / "screenshots", browser)
        browser.close()
    for path in shots.values():
        assert path.parent == tmp_path / "screenshots" and path.stat().st_size > 10_000
