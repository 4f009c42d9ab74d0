"""Service fixtures: the committed Chicago bundle, keys set through settings, a TestClient."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from app_helpers import BUNDLE, make_settings
from fastapi.testclient import TestClient

from app.main import create_app
from app.platform.registry import LoadedModel, load_model
from training.inspections.ingest import CityData
from training.inspections.train import build_examples


@pytest.fixture(scope="session")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    # Its own database, not the repo's var/ one: lists and outcomes a person stored there would
    # change what the establishment and list routes answer.
    database = tmp_path_factory.mktemp("client-db") / "civicrisk.sqlite3"
    with TestClient(create_app(make_settings(database_url=f"sqlite:///{database}"))) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((BUNDLE / "manifest.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def full_record(manifest: dict[str, Any]) -> dict[str, Any]:
    """One record with every feature of the schema set."""
    record: dict[str, Any] = {}
    for entry in manifest["feature_schema"]:
        record[entry["name"]] = entry["allowed_values"][0] if entry["type"] == "category" else 1.0
    return record


@pytest.fixture(scope="session")
def model() -> LoadedModel:
    """The committed Chicago bundle, loaded and verified as the service loads it."""
    return load_model(BUNDLE)


@pytest.fixture(scope="session")
def feature_frame(chicago_data: CityData, model: LoadedModel) -> pd.DataFrame:
    """Real point-in-time feature rows from 2014-07-01 on (with missing values), in schema order."""
    examples = build_examples(chicago_data, pd.Timestamp("2014-07-01"), None)
    return examples.features[list(model.layout.names)].reset_index(drop=True)
