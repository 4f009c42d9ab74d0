"""One row per violation, by configuration alone: rows grouped into inspections, severity from a
per-row flag or the code, placeholder rows excluded and counted, a score as label and features, and
one clear line (exit 2) for an id that is not an inspection id or a family with nothing in it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

from training.config import ConfigError
from training.inspections.config import load_city_config
from training.inspections.features.score import score_features
from training.inspections.ingest import load_city, load_inspections
from training.inspections.roster import establishments_in_scope

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "nyc-like"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nyc_like_generate", EXAMPLE / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def example_city(folder: Path, establishments: int = 60, config_text: str | None = None) -> Path:
    """The made-up example, generated into `folder` beside a copy (or an edit) of its config."""
    folder.mkdir(parents=True, exist_ok=True)
    generator().generate(folder / "inspections.csv", establishments=establishments)
    config = folder / "city.toml"
    if config_text is None:
        shutil.copy(EXAMPLE / "city.toml", config)
    else:
        config.write_text(config_text, encoding="utf-8")
    return config


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "civicrisk.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_violation_rows_are_grouped_into_inspections(tmp_path: Path) -> None:
    config = load_city_config(example_city(tmp_path))
    raw = pd.read_csv(tmp_path / "inspections.csv", dtype=str, keep_default_na=False)
    placeholder = raw["INSPECTION DATE"] == "01/01/1900"
    real = raw[~placeholder]
    inspections, notes = load_inspections(config)

    assert f"{int(placeholder.sum())} rows with 'INSPECTION DATE' in ['01/01/1900'] excluded" in notes[0]
    expected = real.groupby(["CAMIS", "INSPECTION DATE", "INSPECTION TYPE"]).ngroups
    assert len(inspections) == expected and len(real) > 2 * expected  # several violations per inspection
    assert f"{len(real)} violation rows grouped into {expected} inspections" in notes
    assert inspections["n_critical"].sum() == (real["CRITICAL FLAG"] == "Critical").sum()
    assert inspections["n_minor"].sum() == (real["CRITICAL FLAG"] == "Not Critical").sum()
    assert inspections["n_serious"].sum() == 0 and config.severity_classes == ("critical", "minor")
    scored = inspections[inspections["score"].notna()]
    assert (scored["label"] == (scored["score"] >= 28)).all() and scored["label"].sum() > 0
    assert not inspections.loc[inspections["score"].isna(), "has_outcome"].any()  # unscored: no outcome
    assert set(inspections["area_borough"]) == {"Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island"}


def test_code_patterns_class_a_violation_whose_flag_is_blank(tmp_path: Path) -> None:
    config = load_city_config(example_city(tmp_path, establishments=20))
    flagged, _ = load_inspections(config)
    raw = pd.read_csv(tmp_path / "inspections.csv", dtype=str, keep_default_na=False)
    raw["CRITICAL FLAG"] = ""
    raw.to_csv(tmp_path / "inspections.csv", index=False)
    by_code, _ = load_inspections(config)
    pd.testing.assert_frame_equal(
        flagged[["n_critical", "n_serious", "n_minor"]], by_code[["n_critical", "n_serious", "n_minor"]]
    )


def test_grade_label_and_config_refusals(tmp_path: Path) -> None:
    text = (EXAMPLE / "city.toml").read_text()
    graded = text.replace("score_at_least = 28", 'grades = ["B", "C"]')
    inspections, _ = load_inspections(load_city_config(example_city(tmp_path / "a", 20, graded)))
    assert (inspections["label"] == inspections["grade"].isin(["B", "C"])).all()
    assert not inspections.loc[inspections["grade"].isna(), "has_outcome"].any()

    both = text.replace("score_at_least = 28", 'score_at_least = 28\nseverity = "critical"')
    with pytest.raises(ConfigError, match="exactly one of label.severity"):
        load_city_config(example_city(tmp_path / "b", 5, both))
    zone = text.replace('timezone = "America/New_York"', 'timezone = "America/Gotham"')
    with pytest.raises(ConfigError, match="unknown IANA time zone 'America/Gotham'"):
        load_city_config(example_city(tmp_path / "c", 5, zone))
    clash = text.replace('borough = "BORO"', 'borough = "BORO"\nzip = "ZIPCODE"')
    with pytest.raises(ConfigError, match="areas.zip: an area filter's name"):
        load_city_config(example_city(tmp_path / "e", 5, clash))
    keyless = text.replace('key = ["CAMIS", "INSPECTION DATE", "INSPECTION TYPE"]', "")
    with pytest.raises(ConfigError, match="set `inspections.key`"):
        load_city_config(example_city(tmp_path / "d", 5, keyless))


def test_an_establishment_id_mapped_as_inspection_id_is_one_config_error(tmp_path: Path) -> None:
    """The issue's first trap: CAMIS as the inspection id used to drop rows silently."""
    text = (EXAMPLE / "city.toml").read_text()
    text = text.replace('key = ["CAMIS", "INSPECTION DATE", "INSPECTION TYPE"]', "")
    text = text.replace('establishment_id = "CAMIS"', 'establishment_id = "CAMIS"\ninspection_id = "CAMIS"')
    config = example_city(tmp_path, 30, text)
    result = cli("train", "--city", str(config), "--out", str(tmp_path / "models"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("civicrisk: error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr
    raw = pd.read_csv(tmp_path / "inspections.csv", dtype=str, keep_default_na=False)
    real = raw[raw["INSPECTION DATE"] != "01/01/1900"]
    conflicting = real.groupby("CAMIS").filter(
        lambda rows: len(rows[["INSPECTION DATE", "ACTION"]].drop_duplicates()) > 1
    )
    assert f"inspections.columns.inspection_id: {len(conflicting)} rows share a 'CAMIS' value" in errors[0]
    assert "set inspections.key" in errors[0]


def test_a_family_with_nothing_in_it_is_named_before_training(tmp_path: Path) -> None:
    """Every establishment inspected once: history has nothing; one line, no numpy traceback."""
    rows = [
        {"id": f"I{n}", "place": f"P{n}", "day": f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}", "bad": n % 3}
        for n in range(400)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "inspections.csv", index=False)
    (tmp_path / "city.toml").write_text(
        '[city]\nname = "once"\n[model]\nname = "once-model"\n'
        '[inspections]\nfile = "inspections.csv"\ndate_format = "%Y-%m-%d"\n'
        '[inspections.columns]\ninspection_id = "id"\nestablishment_id = "place"\ndate = "day"\n'
        '[violations.counts]\ncritical = "bad"\n[label]\nname = "bad"\nseverity = "critical"\n'
    )
    result = cli("train", "--city", str(tmp_path / "city.toml"), "--out", str(tmp_path / "models"))
    assert result.returncode == 2, result.stderr
    assert (
        "civicrisk: error: features: history: no establishment has two inspections — check the inspection key"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_score_features_see_only_earlier_scores() -> None:
    day = pd.Timestamp
    history = pd.DataFrame(
        {
            "establishment_id": ["A", "A", "A", "B"],
            "date": [day("2020-01-01"), day("2020-03-01"), day("2020-05-01"), day("2020-02-01")],
            "score": [10.0, 30.0, None, 7.0],
            "has_outcome": [True, True, True, True],
        }
    )
    queries = pd.DataFrame(
        {
            "establishment_id": ["A", "A", "A", "B", "C"],
            "date": [
                day("2020-01-01"),
                day("2020-03-01"),
                day("2020-06-01"),
                day("2020-03-01"),
                day("2020-03-01"),
            ],
        }
    )
    features = score_features(queries, history)
    assert features["prev_score"].tolist()[1:4] == [10.0, 30.0, 7.0]
    assert features["prev_score"].isna().tolist() == [True, False, False, False, True]
    assert features["score_trend"].iloc[2] == 20.0 and features["score_trend"].isna().sum() == 4
    assert features["past_score_mean"].iloc[2] == 20.0


def test_a_city_with_only_a_score_needs_no_violation_columns(tmp_path: Path) -> None:
    pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "place": ["p", "p", "q"],
            "day": ["2020-01-01", "2020-02-01", "2020-02-01"],
            "pts": ["10", "30", ""],
        }  # fmt: skip
    ).to_csv(tmp_path / "scores.csv", index=False)
    (tmp_path / "city.toml").write_text(
        '[city]\nname = "scored"\n[model]\nname = "scored-model"\n'
        '[inspections]\nfile = "scores.csv"\ndate_format = "%Y-%m-%d"\n'
        '[inspections.columns]\ninspection_id = "id"\nestablishment_id = "place"\n'
        'date = "day"\nscore = "pts"\n'
        '[label]\nname = "high_score"\nscore_at_least = 28\n'
    )
    config = load_city_config(tmp_path / "city.toml")
    inspections, _ = load_inspections(config)
    assert config.severity_classes == ()
    assert inspections["label"].tolist() == [0, 1, 0] and inspections["has_outcome"].tolist() == [
        True,
        True,
        False,
    ]


def test_the_glm_baseline_reads_the_configured_features(tmp_path: Path) -> None:
    from training.inspections.baselines import baseline_candidates

    config = load_city_config(example_city(tmp_path / "a", 5))
    columns = ["prev_critical", "prev_minor", "first_inspection", "days_since_last", "prev_score", "month"]
    features = pd.DataFrame(columns=columns)
    names = {candidate.name: candidate.features for candidate in baseline_candidates(features, config)}
    assert names == {
        "previous_critical_rule": ["prev_critical"],
        "city_logistic": columns[:-1],
    }
    text = (EXAMPLE / "city.toml").read_text().replace('"prev_score"]', '"prev_score", "garbage_carts"]')
    config = load_city_config(example_city(tmp_path / "b", 5, text))
    with pytest.raises(ConfigError, match=r"baselines.glm_features: \['garbage_carts'\] are not features"):
        baseline_candidates(features, config)


def test_an_area_filter_from_a_polygon_layer(tmp_path: Path) -> None:
    def box(name: str, south: float, north: float) -> dict[str, object]:
        ring = [[-74.4, south], [-73.5, south], [-73.5, north], [-74.4, north], [-74.4, south]]
        return {
            "type": "Feature",
            "properties": {"half": name},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    folder = tmp_path / "city"
    folder.mkdir()
    layer = {"type": "FeatureCollection", "features": [box("North", 40.75, 41.2), box("South", 40.3, 40.75)]}
    (folder / "halves.geojson").write_text(json.dumps(layer))
    text = (
        EXAMPLE / "city.toml"
    ).read_text() + '\n[areas.half]\nboundaries = "halves.geojson"\nname_property = "half"\n'
    config = load_city_config(example_city(folder, 30, text))
    assert config.area_filters == ("borough", "half")
    inspections, _ = load_inspections(config)
    north = inspections["latitude"] >= 40.75
    assert (inspections.loc[north, "area_half"] == "North").all()
    assert (inspections.loc[~north, "area_half"] == "South").all()
    roster = establishments_in_scope(load_city(config), pd.Timestamp("2024-06-28"))
    assert {"area_borough", "area_half"} <= set(roster.columns) and roster["area_half"].notna().all()
