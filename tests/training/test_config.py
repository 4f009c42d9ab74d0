"""City config: the sample parses, and every mistake names the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from training.config import ConfigError
from training.inspections.config import CityConfig, load_city_config
from training.inspections.ingest import load_city

CHICAGO_CONFIG = Path(__file__).resolve().parents[2] / "data" / "sample" / "chicago" / "city.toml"


def test_sample_config_maps_every_canonical_field(chicago_config: CityConfig) -> None:
    assert chicago_config.columns["establishment_id"] == "License #"
    assert chicago_config.severity_by_code[1] == "critical"
    assert chicago_config.severity_by_code[14] == "critical"
    assert chicago_config.severity_by_code[15] == "serious"
    assert chicago_config.severity_by_code[44] == "minor"
    assert chicago_config.severity_by_code[70] == "minor"
    assert 45 not in chicago_config.severity_by_code
    assert chicago_config.inspection_types == ("Canvass",)
    assert set(chicago_config.drop_results) == {"Out of Business", "Business Not Located", "No Entry"}
    assert {source.name for source in chicago_config.environment} == {"sanitation_311", "burglaries"}
    assert chicago_config.inspections.path.parent == CHICAGO_CONFIG.parent  # relative to the config file


def _edited_copy(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the sample city whose config has one edit; the data files stay where they are."""
    text = CHICAGO_CONFIG.read_text(encoding="utf-8")
    assert old in text
    for source in CHICAGO_CONFIG.parent.iterdir():
        if source.suffix in (".gz", ".csv"):
            (tmp_path / source.name).symlink_to(source)
    config = tmp_path / "city.toml"
    config.write_text(text.replace(old, new, 1), encoding="utf-8")
    return config


@pytest.mark.parametrize(
    ("old", "new", "key", "problem"),
    [
        ('file = "food_inspections.csv.gz"', 'file = "nope.csv"', "inspections.file", "file not found"),
        ('date = "Inspection Date"', "", "inspections.columns.date", "missing"),
        ('critical = ["1-14"]', 'critical = ["14-1"]', "violations.severity.critical", "end before start"),
        ('critical = ["1-14"]', 'critical = ["1-14", "30"]', "violations.severity", "already classed"),
        ('severity = "critical"', 'severity = "fatal"', "label.severity", "unknown class"),
        (
            "window_days = 90\nradius_km = 1.0",
            'window_days = "x"\nradius_km = 1.0',
            "environment[0]",
            "expected int",
        ),
        ('area_field = "zip"', 'area_field = "ward"', "neighbourhood.area_field", "not a mapped"),
    ],
)
def test_config_errors_name_file_and_key(tmp_path: Path, old: str, new: str, key: str, problem: str) -> None:
    config = _edited_copy(tmp_path, old, new)
    with pytest.raises(ConfigError) as caught:
        load_city_config(config)
    assert str(config) in str(caught.value)
    assert key in caught.value.key
    assert problem in caught.value.problem


def test_unknown_column_is_reported_when_the_data_is_read(tmp_path: Path) -> None:
    config = _edited_copy(
        tmp_path,
        'latitude = "Latitude"\nlongitude = "Longitude"\nfacility',
        'latitude = "Lat"\nlongitude = "Longitude"\nfacility',
    )
    with pytest.raises(ConfigError) as caught:
        load_city(load_city_config(config))
    assert caught.value.key == "inspections.columns.latitude"
    assert "'Lat'" in caught.value.problem
    assert "food_inspections.csv.gz" in str(caught.value)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_city_config(tmp_path / "absent.toml")


def test_toml_syntax_error(tmp_path: Path) -> None:
    shutil.copy(CHICAGO_CONFIG, tmp_path / "city.toml")
    (tmp_path / "city.toml").write_text("[city\nname=", encoding="utf-8")
    with pytest.raises(ConfigError, match="syntax"):
        load_city_config(tmp_path / "city.toml")
