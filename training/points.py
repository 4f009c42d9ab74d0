"""Points in time and space as numbers: dates as day counts, coordinates as unit vectors."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

EARTH_RADIUS_KM = 6371.0088


def to_day(dates: pd.Series) -> np.ndarray:
    """Datetimes to int64 days since the epoch (NaT becomes a large negative sentinel)."""
    values: np.ndarray = dates.to_numpy(dtype="datetime64[D]").astype("int64")
    return values


def to_xyz(latitude: Iterable[float], longitude: Iterable[float]) -> np.ndarray:
    """Latitude/longitude in degrees to Earth-centred coordinates in km.

    Chord distance equals great-circle distance to within metres at city scale, and no projection
    origin is needed, so appending rows can never move existing points.
    """
    lat = np.radians(np.asarray(latitude, dtype="float64"))
    lon = np.radians(np.asarray(longitude, dtype="float64"))
    return EARTH_RADIUS_KM * np.column_stack(
        (np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat))
    )
