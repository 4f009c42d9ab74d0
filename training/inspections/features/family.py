"""What a feature family declares: one object holds everything the pipeline needs to know about it.

A family is registered once, in `training/inspections/features/registry.py`; config validation,
ingest (the data files in the bundle's content hash, and loading), `build_features` and the reason
texts all read it from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key
from training.inspections.ingest import CityData

Builder = Callable[[pd.DataFrame, CityData, CityConfig], pd.DataFrame | None]


def _no_need(document: Mapping[str, Any]) -> str | None:
    return None


def _no_files(config: CityConfig) -> Sequence[Path]:
    return ()


def _no_description(name: str) -> str | None:
    return None


@dataclass(frozen=True)
class FeatureFamily:
    """One feature family.

    `build(queries, data, config)` returns the family's columns for each query, computed from rows
    dated strictly before the query's date, or None when the config gives it nothing to build.
    `keys` are the config keys the family owns (validated and listed in the config reference).
    `needs(document)` says what the raw config lacks for the family to be built, or None.
    `files(config)` names every data file it reads: they go into the bundle's content hash whenever
    the config names them, whether or not the family is switched on. `load(config)`, if given, reads
    them once per city; the result is `data.family_data[name]`. `describe(column)` is the reason text
    of one of its columns, or None for a column that is not its own.
    `anchored` families count recent events (outcomes nearby, complaints, crime) in windows that end
    at each query's date, or at the day after the newest outcome the data holds if that is earlier:
    with fresh data nothing changes, while with stale data a "last 7 days" window holds the last 7
    days the service knows instead of nothing (`build_features`).
    """

    name: str
    build: Builder
    describe: Callable[[str], str | None] = _no_description
    keys: tuple[Key, ...] = ()
    needs: Callable[[Mapping[str, Any]], str | None] = _no_need
    files: Callable[[CityConfig], Sequence[Path]] = _no_files
    load: Callable[[CityConfig], object] | None = None
    query_columns: tuple[str, ...] = ()  # beyond establishment_id and date
    anchored: bool = False


def described_by(descriptions: Mapping[str, str]) -> Callable[[str], str | None]:
    """A `describe` for a family whose columns have fixed names."""
    return descriptions.get


def mapped_columns(document: Mapping[str, Any]) -> dict[str, Any]:
    """`inspections.columns` of a raw config document, or {} when it is missing or malformed."""
    inspections = document.get("inspections")
    columns = inspections.get("columns", {}) if isinstance(inspections, dict) else {}
    return columns if isinstance(columns, dict) else {}


def located(document: Mapping[str, Any]) -> bool:
    """The config maps inspection coordinates."""
    columns = mapped_columns(document)
    return "latitude" in columns and "longitude" in columns
