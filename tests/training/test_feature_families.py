"""The feature-family registry: every family's files are hashed, and a family registered in one line is
validated, loaded, built, described and hashed with no other module touched."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from training.bundle import content_hash
from training.config import ConfigErrors
from training.inspections.config import CityConfig, load_city_config
from training.inspections.config_schema import Key, reference_markdown
from training.inspections.features import build_features, describe_feature, registry
from training.inspections.features.family import FeatureFamily
from training.inspections.ingest import CityData, data_files, load_city
from training.points import to_day

REPO = Path(__file__).resolve().parents[2]
CITIES = {
    "chicago": REPO / "data" / "sample" / "chicago" / "city.toml",
    "boston": REPO / "data" / "sample" / "boston" / "city.toml",
}


@pytest.mark.parametrize("city", CITIES)
def test_every_file_a_family_declares_is_in_the_content_hash(city: str) -> None:
    config = load_city_config(CITIES[city])
    hashed = data_files(config)
    assert hashed[0] == config.inspections.path
    for family in registry.REGISTRY:
        for path in family.files(config):
            assert path in hashed, f"{family.name}: {path} is not in data_files"


@pytest.mark.parametrize("city", CITIES)
def test_the_committed_bundles_data_hash_is_unchanged(city: str) -> None:
    config = load_city_config(CITIES[city])
    (manifest,) = (REPO / "models" / config.model_name).glob("*/manifest.json")
    data = json.loads(manifest.read_text())["data"]
    assert [path.name for path in data_files(config)] == data["files"]
    assert content_hash(data_files(config)) == data["content_hash"]


def test_families_have_distinct_names() -> None:
    assert len(set(registry.names())) == len(registry.REGISTRY)


# A toy family, declared as a new module would declare it: its own [toy] section and file.
def _toy_files(config: CityConfig) -> Sequence[Path]:
    section = config.raw.get("toy")
    return ((config.path.parent / section["file"]).resolve(),) if isinstance(section, dict) else ()


def _toy_load(config: CityConfig) -> pd.Series:
    (path,) = _toy_files(config)
    frame = pd.read_csv(path)
    return pd.Series(
        frame[config.raw["toy"]["column"]].to_numpy(), index=to_day(pd.to_datetime(frame["date"]))
    )


def _toy_build(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame:
    values: pd.Series = data.family_data["toy"]
    days = np.sort(values.index.to_numpy())
    before = np.searchsorted(days, to_day(queries["date"]), side="left")  # strictly before the date
    return pd.DataFrame({"toy_before": before.astype("float64")}, index=queries.index)


def _toy_needs(document: Mapping[str, Any]) -> str | None:
    return None if "toy" in document else "needs a [toy] section"


TOY = FeatureFamily(
    name="toy",
    build=_toy_build,
    describe=lambda name: "toy rows dated before the inspection" if name == "toy_before" else None,
    keys=(
        Key("toy.file", "path", False, "no toy", "the toy CSV (toy family)"),
        Key("toy.column", "string (column)", False, "—", "its value column"),
    ),
    needs=_toy_needs,
    files=_toy_files,
    load=_toy_load,
)


def _toy_city(folder: Path, with_section: bool = True) -> Path:
    shutil.copy(CITIES["boston"].parent / "inspections.csv.gz", folder / "inspections.csv.gz")
    dates = pd.date_range("2008-01-01", "2014-01-01", freq="17D")
    pd.DataFrame({"date": dates.strftime("%Y-%m-%d"), "value": 1.0}).to_csv(folder / "toy.csv", index=False)
    text = CITIES["boston"].read_text(encoding="utf-8")
    text = text.replace('families = ["history", "calendar"]', 'families = ["history", "calendar", "toy"]')
    if with_section:
        text += '\n[toy]\nfile = "toy.csv"\ncolumn = "value"\n'
    (folder / "city.toml").write_text(text, encoding="utf-8")
    return folder / "city.toml"


def test_a_registered_family_is_validated_built_described_and_hashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_path = _toy_city(tmp_path)
    with pytest.raises(ConfigErrors) as caught:  # not registered: its key and its name are unknown
        load_city_config(config_path)
    assert {error.key for error in caught.value.errors} >= {"toy.file", "features.families"}

    monkeypatch.setattr(registry, "REGISTRY", (*registry.REGISTRY, TOY))
    assert "| `toy.file` | path | no | no toy |" in reference_markdown()
    (tmp_path / "bare").mkdir()
    with pytest.raises(ConfigErrors) as caught:
        load_city_config(_toy_city(tmp_path / "bare", with_section=False))
    assert [str(error.problem) for error in caught.value.errors] == ["family 'toy' needs a [toy] section"]

    config = load_city_config(config_path)
    data = load_city(config)
    queries = data.inspections.tail(200)
    features = build_features(queries, data)
    assert features.columns[-1] == "toy_before" and features["toy_before"].gt(0).all()
    boston = load_city(load_city_config(CITIES["boston"]))
    pd.testing.assert_frame_equal(
        features.drop(columns="toy_before").reset_index(drop=True),
        build_features(boston.inspections.tail(200), boston).reset_index(drop=True),
    )
    assert describe_feature("toy_before") == "toy rows dated before the inspection"

    assert (tmp_path / "toy.csv").resolve() in data_files(config)
    hashed = content_hash(data_files(config))
    with (tmp_path / "toy.csv").open("a") as handle:
        handle.write("2014-02-01,1.0\n")
    assert content_hash(data_files(config)) != hashed
