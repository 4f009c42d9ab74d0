"""Shared fixtures: the real Chicago sample data, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.config import CityConfig, load_city_config
from training.ingest import CityData, load_city

REPO_ROOT = Path(__file__).resolve().parent.parent
CHICAGO_CONFIG = REPO_ROOT / "data" / "sample" / "chicago" / "city.toml"


@pytest.fixture(scope="session")
def chicago_config_path() -> Path:
    return CHICAGO_CONFIG


@pytest.fixture(scope="session")
def chicago_config() -> CityConfig:
    return load_city_config(CHICAGO_CONFIG)


@pytest.fixture(scope="session")
def chicago_data(chicago_config: CityConfig) -> CityData:
    return load_city(chicago_config)
