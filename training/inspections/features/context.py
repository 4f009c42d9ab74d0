"""Weather before the date and the calendar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key
from training.inspections.features.family import FeatureFamily, described_by
from training.inspections.ingest import CityData
from training.points import to_day


def weather_features(queries: pd.DataFrame, daily_max: pd.Series, window_days: int) -> pd.DataFrame:
    """Mean daily maximum temperature over the `window_days` days before the date (not the day itself)."""
    query_day = to_day(queries["date"])
    samples = np.column_stack(
        [daily_max.reindex(query_day - offset).to_numpy() for offset in range(1, window_days + 1)]
    )
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(samples), axis=1)
        mean = np.where(counts > 0, np.nansum(samples, axis=1) / np.maximum(counts, 1), np.nan)
    return pd.DataFrame({f"temperature_max_mean_{window_days}d": mean}, index=queries.index)


def calendar_features(queries: pd.DataFrame) -> pd.DataFrame:
    dates = queries["date"]
    return pd.DataFrame(
        {
            "month": dates.dt.month.astype("float64"),
            "day_of_week": dates.dt.day_of_week.astype("float64"),
        },
        index=queries.index,
    )


def _build_weather(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame | None:
    if data.weather is None or config.weather is None:
        return None
    return weather_features(queries, data.weather, config.weather.window_days)


def _describe_weather(name: str) -> str | None:
    if name.startswith("temperature_max_mean_"):
        return f"mean daily maximum temperature over the {name.rsplit('_', 1)[1]} before"
    return None


def _needs_weather(document: Mapping[str, Any]) -> str | None:
    return None if "weather" in document else "needs a [weather] section"


def _weather_files(config: CityConfig) -> Sequence[Path]:
    return (config.weather.source.path,) if config.weather else ()


WEATHER = FeatureFamily(
    name="weather",
    build=_build_weather,
    describe=_describe_weather,
    keys=(
        Key("weather.file", "path", False, "no weather", "daily weather CSV (weather family)"),
        Key("weather.date_column", "string (column)", False, "—", "its date column"),
        Key("weather.date_format", "string", False, "—", "strptime format of its dates"),
        Key(
            "weather.temperature_max_column",
            "string (column)",
            False,
            "—",
            "daily maximum temperature column",
        ),
        Key("weather.window_days", "integer", False, "—", "days before the inspection averaged"),
    ),
    needs=_needs_weather,
    files=_weather_files,
)

CALENDAR = FeatureFamily(
    name="calendar",
    build=lambda queries, data, config: calendar_features(queries),
    describe=described_by(
        {"month": "month of the inspection date", "day_of_week": "day of the week (0 = Monday)"}
    ),
)
