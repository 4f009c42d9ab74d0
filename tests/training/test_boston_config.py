"""Boston: a second city by configuration alone, and what a city's config and data may get wrong."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from training.config import ConfigError, ConfigErrors
from training.inspections.config import load_city_config
from training.inspections.features import build_features, describe_feature
from training.inspections.ingest import load_city

BOSTON = Path(__file__).resolve().parents[2] / "data" / "sample" / "boston" / "city.toml"


def test_boston_reads_counts_and_builds_only_its_families() -> None:
    data = load_city(load_city_config(BOSTON))
    inspections = data.inspections
    assert len(inspections) == 29_494 and data.notes == ()
    assert inspections["label"].mean() == pytest.approx(0.428, abs=0.001)  # the README's 42.8%
    queries = inspections.tail(50)
    features = build_features(queries, data)
    assert "prev_critical" in features and "month" in features
    assert not any(name.startswith(("nearby_", "license_", "temperature")) for name in features)
    assert "prev_failed" not in features  # Boston has no result column


def _boston_copy(tmp_path: Path, text: str, data: pd.DataFrame | None = None) -> Path:
    config = tmp_path / "city.toml"
    config.write_text(text, encoding="utf-8")
    if data is None:
        shutil.copy(BOSTON.parent / "inspections.csv.gz", tmp_path / "inspections.csv.gz")
    else:
        data.to_csv(tmp_path / "inspections.csv.gz", index=False)
    return config


def test_a_family_without_its_columns_is_refused(tmp_path: Path) -> None:
    text = BOSTON.read_text().replace(
        'families = ["history", "calendar"]', 'families = ["history", "neighbourhood", "weather"]'
    )
    with pytest.raises(ConfigErrors) as caught:
        load_city_config(_boston_copy(tmp_path, text))
    messages = [f"{error.key}: {error.problem}" for error in caught.value.errors]
    assert (
        "features.families: family 'neighbourhood' needs inspections.columns.latitude and .longitude"
        in messages
    )
    assert "features.families: family 'weather' needs a [weather] section" in messages


def test_counts_column_missing_from_the_file_is_named(tmp_path: Path) -> None:
    text = BOSTON.read_text().replace('critical = "***"', 'critical = "****"')
    with pytest.raises(ConfigError) as caught:
        load_city_config(_boston_copy(tmp_path, text))
    assert caught.value.key == "violations.counts.critical" and "'****' is not in inspections.csv.gz" in str(
        caught.value
    )


def test_bad_dates_and_repeated_ids_are_counted_not_dropped_silently(tmp_path: Path) -> None:
    rows = pd.read_csv(BOSTON.parent / "inspections.csv.gz", dtype=str).head(200)
    rows.loc[5, "date"] = "2013-02-30"
    rows.loc[9, "date"] = "yesterday"
    rows.loc[20] = rows.loc[21]  # an exact repeat; a repeat naming another place is a config error (#24)
    data = load_city(load_city_config(_boston_copy(tmp_path, BOSTON.read_text(), rows)))
    assert len(data.inspections) == 197
    assert any(
        note.startswith("2 rows with an unparseable 'date'") and "'2013-02-30'" in note for note in data.notes
    )
    assert any(note.startswith("1 repeated 'inspection_id'") for note in data.notes)


def test_boston_names_its_classes_in_its_own_words() -> None:
    names = load_city_config(BOSTON).severity_names
    assert describe_feature("prev_critical", names) == "severe violations found at the previous inspection"
    assert describe_feature("critical_decayed", names).startswith("earlier severe-violation inspections")
    assert describe_feature("prev_serious", names).startswith("significant violations found")
    assert describe_feature("prev_critical") == "critical violations found at the previous inspection"


def test_a_name_for_an_unknown_class_is_refused(tmp_path: Path) -> None:
    text = BOSTON.read_text().replace('serious = "significant"', 'grave = "significant"')
    with pytest.raises((ConfigError, ConfigErrors)) as caught:
        load_city_config(_boston_copy(tmp_path, text))
    assert "violations.names.grave" in str(caught.value)
