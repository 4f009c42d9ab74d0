"""Weather before the date and the calendar."""

from __future__ import annotations

import numpy as np
import pandas as pd

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
