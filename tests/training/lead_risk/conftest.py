"""Lead fixtures: the Chicago lead config and its reference data, loaded once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from training.lead.config import LeadConfig, load_lead_config
from training.lead.reference import Reference, load_reference

LEAD_CONFIG = Path(__file__).resolve().parents[3] / "data" / "sample" / "chicago" / "lead.toml"


@pytest.fixture(scope="session")
def lead_config_path() -> Path:
    return LEAD_CONFIG


@pytest.fixture(scope="session")
def lead_config() -> LeadConfig:
    return load_lead_config(LEAD_CONFIG)


@pytest.fixture(scope="session")
def reference(lead_config: LeadConfig) -> Reference:
    return load_reference(lead_config)
