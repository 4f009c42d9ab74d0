"""The third worked example (docs/examples/nyc-like): a made-up file in the row-per-violation layout
trains, evaluates and is served — daily list, area filters, page — by its config file alone."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.settings import Settings
from tests.training.test_row_per_violation import EXAMPLE, cli, generator
from training.config import today_in

KEY = "nyclike-partner-key-0123456789"


def test_the_row_per_violation_example_trains_evaluates_and_is_served(tmp_path: Path) -> None:
    city_dir, models = tmp_path / "elsewhere" / "nyc", tmp_path / "models"
    city_dir.mkdir(parents=True)
    generator().generate(city_dir / "inspections.csv", establishments=240)  # ~6,500 rows: CI-fast
    shutil.copy(EXAMPLE / "city.toml", city_dir / "city.toml")
    config = city_dir / "city.toml"

    trained = cli("train", "--city", str(config), "--until", "2024-02-29", "--out", str(models))
    assert trained.returncode == 0, trained.stderr
    assert "rows with 'INSPECTION DATE' in ['01/01/1900'] excluded" in trained.stderr
    bundle = Path(trained.stdout.strip().splitlines()[-1])
    card = (bundle / "model_card.md").read_text()
    assert "New York City (made-up example data)" in card and "score of the previous inspection" in card
    assert "serious" not in card.lower()  # a class this city does not have
    assert "not critical violations found at the previous inspection" in card
    assert "earlier inspections where the inspection scored 28 points or more" in card

    evaluated = cli(
        "evaluate",
        "--city",
        str(config),
        "--model",
        str(bundle),
        "--start",
        "2024-03-01",
        "--end",
        "2024-06-27",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["out_of_sample"] is True
    assert set(metrics["baselines"]) == {"previous_critical_rule", "city_logistic"}
    for name in ("previous_critical_rule", "city_logistic", "(this bundle)"):
        assert name in evaluated.stderr  # the table beside the model
    assert (
        0.5 < metrics["auc"] <= 1.0
        and metrics["baselines"]["city_logistic"]["n_inspections"] == metrics["n_inspections"]
    )
    help_text = cli("evaluate", "--help").stdout + cli("--help").stdout
    assert "chicago" not in help_text.lower()

    settings = Settings(
        models_dir=models,
        data_dir=tmp_path / "no-cities-here",
        cities=(config,),
        database_url=f"sqlite:///{tmp_path / 'lists.sqlite3'}",
        api_keys=(KEY,),
        daily_precompute=False,
    )
    with TestClient(create_app(settings)) as client:
        assert [m["name"] for m in client.get("/v1/models").json()["models"]] == [
            "nyclike-restaurant-inspections"
        ]
        daily = client.get("/v1/inspections/nyclike/daily", params={"limit": 20})
        assert daily.status_code == 200, daily.text
        body = daily.json()
        assert body["city_display_name"] == "New York City (made-up example data)"
        assert len(body["rows"]) == 20 and body["rows"][0]["name"].startswith("MADE-UP EATERY")
        assert {row["area_borough"] for row in body["rows"]} <= {
            "Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"
        }  # fmt: skip

        queens = client.get("/v1/inspections/nyclike/daily", params={"borough": "queens", "limit": 500})
        assert queens.status_code == 200, queens.text
        rows = queens.json()["rows"]
        assert rows and {row["area_borough"] for row in rows} == {"Queens"}
        assert queens.json()["parameters"]["areas"] == {"borough": "Queens"}

        unknown = client.get("/v1/inspections/nyclike/daily", params={"borough": "Gotham"})
        assert unknown.status_code == 422
        assert (
            "unknown borough 'Gotham'; known: Bronx, Brooklyn, Manhattan, Queens, Staten Island"
            in unknown.text
        )
        chicago_filter = client.get("/v1/inspections/nyclike/daily", params={"community_area": "Manhattan"})
        assert chicago_filter.status_code == 422 and "has no community areas" in chicago_filter.text

        as_csv = client.get("/v1/inspections/nyclike/daily", params={"limit": 5, "format": "csv"})
        header = next(csv.reader(io.StringIO(as_csv.text)))
        assert header[-1] == "area_borough" and "rank" in header and "zip" in header

        page = client.get("/inspector", params={"city": "nyclike"})
        assert page.status_code == 200 and "New York City (made-up example data)" in page.text
        assert '<select name="borough"' in page.text  # the city's [areas] filter, on the page too
        queens_page = client.get("/inspector", params={"city": "nyclike", "borough": "queens", "limit": 500})
        assert queens_page.status_code == 200 and '<option value="Queens" selected>' in queens_page.text
        listed = {row["establishment_id"] for row in rows}  # the API's Queens list above
        shown = set(re.findall(r"ID ([^ <]+)", queens_page.text))
        assert shown and shown <= listed
        gotham = client.get("/inspector", params={"city": "nyclike", "borough": "Gotham"})
        assert gotham.status_code == 422 and "unknown borough" in gotham.text

        outcome = {
            "inspection_id": "NEW-1",
            "establishment_id": body["rows"][0]["establishment_id"],
            "date": "2024-06-28",
            "result": "Violations were cited in the following area(s).",
        }
        posted = client.post(
            "/v1/inspections/nyclike/outcomes", json={"outcomes": [outcome]}, headers={"X-API-Key": KEY}
        )
        assert posted.status_code == 201, posted.text
        after = client.get("/v1/inspections/nyclike/daily", params={"date": "2024-06-29", "borough": "Bronx"})
        assert after.status_code == 200, after.text  # a posted outcome (no score) joins the history

        missing = client.get("/v1/inspections/gotham/daily")
        assert missing.status_code == 404 and f"CIVICRISK_CITIES: {config}" in missing.text


def test_a_city_day_is_its_own_not_utc() -> None:
    late_evening_in_new_york = datetime(2026, 12, 7, 3, 30, tzinfo=UTC)
    assert today_in("America/New_York", late_evening_in_new_york) == date(2026, 12, 6)
    assert today_in("UTC", late_evening_in_new_york) == date(2026, 12, 7)


def test_civicrisk_cities_lists_config_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CIVICRISK_CITIES", "/srv/nyc/city.toml, /srv/boston/city.toml")
    assert Settings().cities == (Path("/srv/nyc/city.toml"), Path("/srv/boston/city.toml"))


def test_run_serves_its_city_from_outside_the_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from civicrisk.cli import _serve_run_city

    (tmp_path / "data" / "boston").mkdir(parents=True)
    (tmp_path / "data" / "boston" / "city.toml").write_text("")
    monkeypatch.setenv("CIVICRISK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CIVICRISK_CITIES", "")  # recorded, so the value the code sets is undone after
    monkeypatch.delenv("CIVICRISK_CITIES")
    _serve_run_city(tmp_path / "data" / "boston" / "city.toml")  # found there: discovery as before
    assert "CIVICRISK_CITIES" not in os.environ
    _serve_run_city(tmp_path / "nyc.toml")
    assert Settings().cities == (
        (tmp_path / "data" / "boston" / "city.toml").resolve(),
        (tmp_path / "nyc.toml").resolve(),
    )
