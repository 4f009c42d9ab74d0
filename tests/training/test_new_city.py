"""The guide holds: its reference is the code's, and a made-up city built from its template trains,
scores and is served with no code of its own."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.settings import Settings
from training.inspections.config_schema import reference_markdown

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "new-city.md"
TEMPLATE = REPO / "docs" / "city.template.toml"
KEY = "springfield-partner-key-0123456789"


def test_guide_reference_is_generated_from_the_code() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("<!-- reference:start -->\n") + len("<!-- reference:start -->\n")
    assert text[start : text.index("<!-- reference:end -->")] == reference_markdown()


def _springfield(folder: Path, seed: int = 7) -> None:
    """Three years of inspections of 300 places whose own record predicts their next inspection."""
    rng = np.random.default_rng(seed)
    rows = []
    for place in range(300):
        propensity = rng.beta(1.5, 4.0)
        day = pd.Timestamp("2019-01-01") + pd.Timedelta(days=int(rng.integers(0, 120)))
        while day < pd.Timestamp("2021-12-31"):
            critical = int(rng.random() < propensity) * int(rng.integers(1, 3))
            rows.append(
                {
                    "inspection_id": f"S{len(rows):06d}",
                    "establishment_id": f"P{place:04d}",
                    "inspection_date": day.date().isoformat(),
                    "result": "Fail" if critical else "Pass",
                    "name": f"Place {place}",
                    "address": f"{place} Evergreen Terrace",
                    "critical_violations": critical,
                    "serious_violations": int(rng.integers(0, 3)),
                    "minor_violations": int(rng.integers(0, 5)),
                }
            )
            day += pd.Timedelta(days=int(rng.integers(60, 200)))
    pd.DataFrame(rows).to_csv(folder / "inspections.csv", index=False)
    shutil.copy(TEMPLATE, folder / "city.toml")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", *args], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def test_a_made_up_city_trains_scores_and_is_served(tmp_path: Path) -> None:
    city_dir, models = tmp_path / "data" / "springfield", tmp_path / "models"
    city_dir.mkdir(parents=True)
    _springfield(city_dir)
    config = city_dir / "city.toml"

    bundle = Path(_cli("train", "--city", str(config), "--out", str(models)).stdout.strip().splitlines()[-1])
    assert bundle.parent.name == "springfield-food-inspections" and (bundle / "model_card.md").is_file()

    upcoming = pd.read_csv(city_dir / "inspections.csv", dtype=str).tail(20)
    upcoming = upcoming.drop(
        columns=["result", "critical_violations", "serious_violations", "minor_violations"]
    )
    upcoming["inspection_date"] = "2022-01-03"
    upcoming.to_csv(tmp_path / "upcoming.csv", index=False)
    _cli(
        "score",
        "--city",
        str(config),
        "--model",
        str(bundle),
        "--input",
        str(tmp_path / "upcoming.csv"),
        "--output",
        str(tmp_path / "ranked.csv"),
    )
    with (tmp_path / "ranked.csv").open() as handle:
        ranked = list(csv.DictReader(handle))
    assert len(ranked) == 20 and ranked[0]["rank"] == "1"

    settings = Settings(
        models_dir=models,
        data_dir=tmp_path / "data",
        database_url=f"sqlite:///{tmp_path / 'lists.sqlite3'}",
        api_keys=(KEY,),
    )
    with TestClient(create_app(settings)) as client:
        listed = client.get("/v1/models").json()["models"]
        assert [model["name"] for model in listed] == ["springfield-food-inspections"]
        daily = client.get("/v1/inspections/springfield/daily", params={"limit": 10})
        assert daily.status_code == 200, daily.text
        rows = daily.json()["rows"]
        assert len(rows) == 10 and rows[0]["name"].startswith("Place ")
        page = client.get("/inspector", params={"city": "springfield"})
        assert page.status_code == 200 and "<svg" not in page.text  # no coordinates, no map
        outcome = {
            "inspection_id": "S-NEW-1",
            "establishment_id": rows[0]["establishment_id"],
            "date": "2022-01-03",
            "result": "Fail",
        }
        posted = client.post(
            "/v1/inspections/springfield/outcomes", json={"outcomes": [outcome]}, headers={"X-API-Key": KEY}
        )
        assert posted.status_code == 201

    # Retraining learns from the outcomes posted to the service, and the bundle says so.
    retrained = (
        _cli(
            "train",
            "--city",
            str(config),
            "--out",
            str(tmp_path / "retrained"),
            "--outcomes-from",
            settings.database_url,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    data = json.loads((Path(retrained) / "manifest.json").read_text())["data"]
    before = json.loads((bundle / "manifest.json").read_text())["data"]
    assert "1 recorded outcomes added from the service's database" in data["notes"]
    assert data["n_examples"] == before["n_examples"] + 1 and data["end"] == "2022-01-03"
