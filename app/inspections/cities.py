"""City data for the establishment endpoint: configs found under the data dir, data loaded lazily.

Loading a city's files takes seconds, so it happens on first use and is cached; feature building is
pandas work and callers run it in a worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.inspections.errors import CityNotFound, EstablishmentNotFound
from app.scoring.types import MISSING_CATEGORY, FeatureLayout, RecordBatch
from training.serving import CityData, ConfigError, build_features, load_city, load_city_config

log = logging.getLogger(__name__)

QUERY_FIELDS = ("establishment_id", "latitude", "longitude", "facility_type", "risk_category", "zip")


@dataclass(frozen=True)
class City:
    """A city's data plus an index of its inspections by establishment."""

    data: CityData
    rows_by_establishment: dict[str, np.ndarray]

    @property
    def last_date(self) -> date:
        last: date = pd.Timestamp(self.data.inspections["date"].max()).date()
        return last


@dataclass(frozen=True)
class EstablishmentFeatures:
    establishment: dict[str, Any]
    as_of: date
    data_until: date
    batch: RecordBatch
    values: dict[str, float | str | None]


class CityStore:
    """Finds the city configs (the `CIVICRISK_CITIES` paths, else `<data_dir>/*/city.toml`) by
    `[city].name` and loads each city once."""

    def __init__(self, data_dir: Path, config_paths: tuple[Path, ...] = ()) -> None:
        self.data_dir = Path(data_dir)
        self.config_paths = tuple(Path(path) for path in config_paths)
        self._configs: dict[str, Path] | None = None
        self._cities: dict[str, City] = {}
        self._recorded: dict[str, City] = {}  # per city: over its files and recorded outcomes
        self._lock = threading.Lock()
        self._display_names: dict[str, str] = {}

    def display_name(self, name: str) -> str:
        """The config's `[city].display_name` ("New York City"), without loading the city's data."""
        self.configs()
        return self._display_names.get(name, name.replace("_", " ").title())

    def after_fork(self) -> None:
        """In a forked child: a lock of its own (another thread of the parent may have held it)."""
        self._lock = threading.Lock()

    def configs(self) -> dict[str, Path]:
        if self._configs is None:
            found: dict[str, Path] = {}
            for path in self.config_paths or tuple(sorted(self.data_dir.glob("*/city.toml"))):
                try:
                    config = load_city_config(path)
                    found[config.city] = path
                    self._display_names[config.city] = config.display_name
                except ConfigError as error:
                    log.error("city config refused", extra={"config": str(path), "reason": str(error)})
            self._configs = found
        return self._configs

    def where(self) -> str:
        """Where the configs were looked for, for a 404 a city's operator can act on."""
        if self.config_paths:
            return "CIVICRISK_CITIES: " + ", ".join(str(path) for path in self.config_paths)
        return f"{self.data_dir}/*/city.toml (set CIVICRISK_CITIES to serve configs elsewhere)"

    def city(self, name: str) -> City:
        """The loaded city (blocking: seconds on first use)."""
        if name in self._cities:
            return self._cities[name]
        path = self.configs().get(name)
        if path is None:
            raise CityNotFound(
                f"no city named {name!r}; known: {sorted(self.configs()) or 'none'} "
                f"(looked in {self.where()})"
            )
        with self._lock:  # one load per city even when many first requests arrive together
            if name not in self._cities:
                data = load_city(load_city_config(path))
                groups = data.inspections.groupby("establishment_id", sort=False).indices
                self._cities[name] = City(data=data, rows_by_establishment=dict(groups))
                log.info("city data loaded", extra={"city": name, "inspections": len(data.inspections)})
        return self._cities[name]

    def with_data(self, name: str, data: CityData) -> City:
        """The city over `data` (its files plus the outcomes recorded through the API, as the daily
        lists read it), indexed by establishment once per version of that data."""
        base = self.city(name)
        if data is base.data:
            return base
        cached = self._recorded.get(name)
        if cached is None or cached.data is not data:
            groups = data.inspections.groupby("establishment_id", sort=False).indices
            cached = City(data=data, rows_by_establishment=dict(groups))
            self._recorded[name] = cached  # replaced whole: a reader sees the old City or the new one
        return cached

    def features(
        self,
        name: str,
        establishment_id: str,
        as_of: date | None,
        layout: FeatureLayout,
        data: CityData,
    ) -> EstablishmentFeatures:
        """Point-in-time features for the establishment's next inspection on `as_of`, from `data`
        (the city's files plus recorded outcomes, `DailyLists.city_data`).

        `as_of` defaults to the day after the latest data. The establishment's location, type and
        risk class come from its latest inspection before `as_of`; with none, it is not known.
        """
        city = self.with_data(name, data)
        day = as_of or city.last_date + timedelta(days=1)
        rows = city.rows_by_establishment.get(establishment_id)
        history = None if rows is None else city.data.inspections.iloc[rows]
        if history is not None:
            history = history[history["date"] < pd.Timestamp(day)]
        if history is None or history.empty:
            raise EstablishmentNotFound(
                f"establishment {establishment_id!r} has no inspection in {name}'s data before {day}"
            )
        latest = history.iloc[-1]
        query = pd.DataFrame([{field: latest.get(field) for field in QUERY_FIELDS} | {"date": day}])
        query["date"] = pd.to_datetime(query["date"])
        features = build_features(query, city.data)
        values = _values(features.iloc[0], layout)
        numeric = np.array([[_number(values[n]) for n in layout.numeric]], dtype=np.float64)
        categorical = tuple([str(values[n] or MISSING_CATEGORY)] for n in layout.categorical)
        info = {
            "establishment_id": establishment_id,
            "name": latest.get("name"),
            "address": latest.get("address"),
        }
        return EstablishmentFeatures(
            establishment={k: (None if pd.isna(v) else str(v)) for k, v in info.items()},
            as_of=day,
            data_until=city.last_date,
            batch=RecordBatch(numeric=numeric, categorical=categorical),
            values=values,
        )


def _number(value: float | str | None) -> float:
    return float("nan") if value is None else float(value)


def _values(row: pd.Series, layout: FeatureLayout) -> dict[str, float | str | None]:
    values: dict[str, float | str | None] = {}
    for name in layout.names:
        value = row.get(name)
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            values[name] = None
        elif name in layout.categorical:
            values[name] = str(value)
        else:
            values[name] = float(value)
    return values
