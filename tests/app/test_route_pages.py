"""The inspector page's default city and label words, the routes pages, and /docs offline."""

from __future__ import annotations

import re

import pytest
from app_helpers import make_settings
from fastapi.testclient import TestClient

from app.main import create_app


def _external(page: str) -> list[str]:
    """Every URL in the page that points at another host."""
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", page)
    return [url for url in urls if "//" in url and not url.startswith("http://testserver/")]


def test_page_opens_on_the_city_with_most_establishments_in_scope(client: TestClient) -> None:
    page = client.get("/inspector", params={"limit": 5})
    assert page.status_code == 200
    assert re.search(r'<option value="chicago" selected>', page.text)  # 7,347 in scope against 1,782
    assert "finds at least one critical violation (codes 1-14)" in page.text


def test_the_default_city_is_a_setting(tmp_path: pytest.TempPathFactory) -> None:
    settings = make_settings(database_url=f"sqlite:///{tmp_path}/lists.sqlite3", default_city="boston")
    with TestClient(create_app(settings)) as client:
        page = client.get("/inspector", params={"limit": 5}).text
    assert re.search(r'<option value="boston" selected>', page)
    # Boston's label in Boston's words, and no routes offered without coordinates.
    assert "at least one severe (***) violation" in page and "critical violation" not in page
    assert 'id="no-routes"' in page and 'id="routes-form"' not in page


def test_routes_pages_show_the_plan_and_a_printable_sheet(client: TestClient) -> None:
    plan = client.get("/inspector/routes", params={"city": "chicago", "inspectors": 3, "per_inspector": 6})
    assert plan.status_code == 200, plan.text
    assert plan.text.count("<polyline") == 3 and plan.text.count("route-sheet") == 3
    plan_id = re.search(r'id="plan-id">#(\d+)<', plan.text)
    assert plan_id is not None
    sheet = client.get(f"/inspector/routes/{plan_id[1]}/2")
    assert sheet.status_code == 200
    assert sheet.text.count('id="route-path"') == 1 and "no road network" in sheet.text
    assert sheet.text.count("<tr>") == 1 + 6  # the header and six stops
    assert not _external(sheet.text) and not _external(plan.text)
    boston = client.get("/inspector/routes", params={"city": "boston", "inspectors": 2, "per_inspector": 3})
    assert boston.status_code == 422 and "no coordinates" in boston.text
    assert client.get(f"/inspector/routes/{plan_id[1]}/9").status_code == 404


def test_docs_and_redoc_load_nothing_from_another_host(client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        page = client.get(path)
        assert page.status_code == 200
        assets = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
        assert assets and all(url.startswith("/docs-assets/") for url in assets), assets
        assert "fonts.googleapis" not in page.text and "cdn.jsdelivr" not in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert path == "/redoc" or '"validatorUrl": null' in page.text
        for url in assets:
            assert client.get(url).status_code == 200
