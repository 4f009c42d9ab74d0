"""What happened near the establishment shortly before the date: complaints, crime, nearby inspections.

Queries are grouped by date; for each date a k-d tree is built over only the rows dated inside the
window before it, so a row on or after the date can never be counted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key, present
from training.inspections.features.family import FeatureFamily, located
from training.inspections.ingest import CityData, EventTable
from training.points import to_day, to_xyz

COORDINATES = ("latitude", "longitude")


def _query_groups(queries: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Query days, coordinates, and the row positions of located queries per distinct day."""
    day = to_day(queries["date"])
    xyz = to_xyz(queries["latitude"], queries["longitude"])
    located = np.flatnonzero(~np.isnan(xyz).any(axis=1))
    groups = [located[day[located] == value] for value in np.unique(day[located])]
    return day, xyz, groups


def _window(days: np.ndarray, day: int, window_days: int) -> slice:
    """Rows (of a day-sorted array) dated in [day - window_days, day)."""
    return slice(
        int(np.searchsorted(days, day - window_days, side="left")),
        int(np.searchsorted(days, day, side="left")),
    )


def event_density_features(queries: pd.DataFrame, events: tuple[EventTable, ...]) -> pd.DataFrame:
    """Events per km² within each source's radius over its window before the date."""
    day, xyz, groups = _query_groups(queries)
    result = pd.DataFrame(index=queries.index)
    for table in events:
        density = np.full(len(queries), np.nan)
        area = math.pi * table.radius_km**2
        for rows in groups:
            window = _window(table.day, int(day[rows[0]]), table.window_days)
            points = table.xyz[window]
            if len(points) == 0:
                density[rows] = 0.0
                continue
            counts = cKDTree(points).query_ball_point(
                xyz[rows], table.radius_km, return_length=True, workers=-1
            )
            density[rows] = np.asarray(counts, dtype="float64") / area
        name = f"{table.name}_per_km2_{table.window_days}d_{table.radius_km:g}km"
        result[name] = density
    return result


def _located_history(inspections: pd.DataFrame) -> dict[str, np.ndarray]:
    """Inspections with an outcome and coordinates, sorted by day, as arrays."""
    located = inspections[
        inspections["has_outcome"] & inspections["latitude"].notna() & inspections["longitude"].notna()
    ]
    day = to_day(located["date"])
    order = np.argsort(day, kind="stable")
    violations = located[["n_critical", "n_serious", "n_minor"]].sum(axis=1).to_numpy(dtype="float64")
    return {
        "day": day[order],
        "xyz": to_xyz(located["latitude"], located["longitude"])[order],
        "label": located["label"].to_numpy(dtype="float64")[order],
        "failed": located["failed"].to_numpy(dtype="float64")[order],
        "violations": violations[order],
    }


def nearby_outcome_features(
    queries: pd.DataFrame,
    inspections: pd.DataFrame,
    radii_km: tuple[float, ...],
    windows_days: tuple[int, ...],
    nearest: tuple[tuple[int, int], ...],
) -> pd.DataFrame:
    """Outcomes of nearby inspections over recent windows: within fixed radii and among the k nearest.

    Inspectors work by area, so recent nearby outcomes carry the area's inspection practice without
    naming any inspector. `nearest` holds (window_days, k) pairs.
    """
    history = _located_history(inspections)
    day, xyz, groups = _query_groups(queries)
    columns: dict[str, np.ndarray] = {}

    def column(name: str) -> np.ndarray:
        return columns.setdefault(name, np.full(len(queries), np.nan))

    for rows in groups:
        query_day = int(day[rows[0]])
        for window_days in windows_days:
            window = _window(history["day"], query_day, window_days)
            points, labels = history["xyz"][window], history["label"][window]
            all_tree = cKDTree(points) if len(points) else None
            hit_tree = cKDTree(points[labels > 0]) if labels.sum() else None
            for radius in radii_km:
                total = np.zeros(len(rows))
                hits = np.zeros(len(rows))
                if all_tree is not None:
                    total = np.asarray(
                        all_tree.query_ball_point(xyz[rows], radius, return_length=True, workers=-1)
                    )
                if hit_tree is not None:
                    hits = np.asarray(
                        hit_tree.query_ball_point(xyz[rows], radius, return_length=True, workers=-1)
                    )
                with np.errstate(invalid="ignore", divide="ignore"):
                    share = np.where(total > 0, hits / np.maximum(total, 1), np.nan)
                column(f"nearby_critical_share_{window_days}d_{radius:g}km")[rows] = share
                column(f"nearby_inspections_{window_days}d_{radius:g}km")[rows] = total
        for window_days, k in nearest:
            window = _window(history["day"], query_day, window_days)
            prefix = f"nearest{k}_{window_days}d"
            for name in ("critical_share", "fail_share", "mean_violations", "mean_km"):
                column(f"{prefix}_{name}")
            if window.stop - window.start < k:
                continue
            distance, index = cKDTree(history["xyz"][window]).query(xyz[rows], k=k, workers=-1)
            column(f"{prefix}_critical_share")[rows] = history["label"][window][index].mean(axis=1)
            column(f"{prefix}_fail_share")[rows] = history["failed"][window][index].mean(axis=1)
            column(f"{prefix}_mean_violations")[rows] = history["violations"][window][index].mean(axis=1)
            column(f"{prefix}_mean_km")[rows] = distance.mean(axis=1)
    if not groups:  # no located query: still return every column
        for window_days in windows_days:
            for radius in radii_km:
                column(f"nearby_critical_share_{window_days}d_{radius:g}km")
                column(f"nearby_inspections_{window_days}d_{radius:g}km")
        for window_days, k in nearest:
            for name in ("critical_share", "fail_share", "mean_violations", "mean_km"):
                column(f"nearest{k}_{window_days}d_{name}")
    return pd.DataFrame(columns, index=queries.index)


AREA_PRIOR_WEIGHT = 5.0  # pseudo-inspections at the city-wide rate, so a quiet area is not 0 or 1


def area_outcome_features(
    queries: pd.DataFrame, inspections: pd.DataFrame, area_field: str, windows_days: tuple[int, ...]
) -> pd.DataFrame:
    """Critical share of recent inspections in the same administrative area (e.g. ZIP code).

    The share is shrunk towards the city-wide rate of all earlier inspections.
    """
    history = inspections[inspections["has_outcome"]]
    history_area = history[area_field].astype("string").fillna("")
    query_area = queries[area_field].astype("string").fillna("")
    codes, _ = pd.factorize(pd.concat([history_area, query_area]))
    stride = 1_000_000
    history_key = codes[: len(history)].astype("int64") * stride + to_day(history["date"])
    query_day = to_day(queries["date"])
    query_key = codes[len(history) :].astype("int64") * stride + query_day
    order = np.argsort(history_key, kind="stable")
    key = history_key[order]
    prefix = np.concatenate(([0.0], np.cumsum(history["label"].to_numpy(dtype="float64")[order])))

    by_day = np.sort(to_day(history["date"]))
    city_prefix = np.concatenate(
        ([0.0], np.cumsum(history["label"].to_numpy(dtype="float64")[np.argsort(to_day(history["date"]))]))
    )
    before = np.searchsorted(by_day, query_day, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        city_rate = np.where(before > 0, city_prefix[before] / np.maximum(before, 1), np.nan)

    result = pd.DataFrame(index=queries.index)
    known = query_area.to_numpy() != ""
    for window_days in windows_days:
        start = np.searchsorted(key, query_key - window_days, side="left")
        stop = np.searchsorted(key, query_key, side="left")
        count = (stop - start).astype("float64")
        hits = prefix[stop] - prefix[start]
        share = (hits + AREA_PRIOR_WEIGHT * city_rate) / (count + AREA_PRIOR_WEIGHT)
        result[f"area_critical_share_{window_days}d"] = np.where(known, share, np.nan)
        result[f"area_inspections_{window_days}d"] = np.where(known, count, np.nan)
    return result


def _build_nearby(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame:
    return nearby_outcome_features(
        queries,
        data.inspections,
        config.neighbourhood_radii_km,
        config.neighbourhood_windows_days,
        config.neighbourhood_nearest,
    )


def _describe_nearby(name: str) -> str | None:
    if name.startswith("nearby_critical_share_"):
        window, radius = name.removeprefix("nearby_critical_share_").split("_")
        return f"share of inspections within {radius} in the last {window} that found a critical violation"
    if name.startswith("nearby_inspections_"):
        window, radius = name.removeprefix("nearby_inspections_").split("_")
        return f"number of inspections within {radius} in the last {window}"
    if name.startswith("nearest"):
        k, window, measure = name.removeprefix("nearest").split("_", 2)
        what = {
            "critical_share": "share that found a critical violation",
            "fail_share": "share that failed",
            "mean_violations": "mean number of violations",
            "mean_km": "mean distance in km",
        }.get(measure, measure)
        return f"{what}, of the {k} nearest inspections in the last {window}"
    return None


def _needs_coordinates(document: Mapping[str, Any]) -> str | None:
    return None if located(document) else "needs inspections.columns.latitude and .longitude"


NEIGHBOURHOOD = FeatureFamily(
    name="neighbourhood",
    build=_build_nearby,
    describe=_describe_nearby,
    keys=(
        Key(
            "neighbourhood.radii_km",
            "list of numbers",
            False,
            "[1.0, 2.0]",
            "radii for nearby inspection outcomes",
        ),
        Key(
            "neighbourhood.window_days",
            "list of integers",
            False,
            "[90, 365]",
            "windows for nearby inspection outcomes",
        ),
        Key(
            "neighbourhood.nearest",
            "list of [window_days, k] pairs",
            False,
            "[[90, 25]]",
            "outcomes of the k nearest inspections in each window",
        ),
    ),
    needs=_needs_coordinates,
    query_columns=COORDINATES,
)


def _describe_density(name: str) -> str | None:
    if "_per_km2_" not in name:
        return None
    source, rest = name.split("_per_km2_")
    window, radius = rest.split("_")
    return f"{source.replace('_', ' ')} per km² within {radius} in the last {window}"


def _needs_events(document: Mapping[str, Any]) -> str | None:
    if located(document) and bool(document.get("environment")):
        return None
    return "needs coordinates and an [[environment]] source"


def _event_files(config: CityConfig) -> Sequence[Path]:
    return tuple(source.source.path for source in config.environment)


ENVIRONMENT = FeatureFamily(
    name="environment",
    build=lambda queries, data, config: event_density_features(queries, data.events),
    describe=_describe_density,
    keys=(
        Key("environment[].name", "string", False, "—", "event source name (feature names start with it)"),
        Key("environment[].file", "path", False, "—", "the events CSV"),
        Key("environment[].date_column", "string (column)", False, "—", "event date column"),
        Key("environment[].date_format", "string", False, "—", "strptime format of the event dates"),
        Key("environment[].latitude", "string (column)", False, "—", "event latitude column"),
        Key("environment[].longitude", "string (column)", False, "—", "event longitude column"),
        Key("environment[].window_days", "integer", False, "—", "days before the inspection date that count"),
        Key("environment[].radius_km", "number", False, "—", "radius around the establishment that counts"),
        Key(
            "environment[].exclude_column",
            "string (column)",
            False,
            "not used",
            "column marking rows to ignore (e.g. duplicates)",
        ),
        Key(
            "environment[].exclude_values",
            "list of strings",
            False,
            "[]",
            "values of `exclude_column` to ignore",
        ),
    ),
    needs=_needs_events,
    files=_event_files,
    query_columns=COORDINATES,
)


def _build_area(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame | None:
    if config.area_field is None:
        return None
    return area_outcome_features(queries, data.inspections, config.area_field, config.area_windows_days)


def _describe_area(name: str) -> str | None:
    if name.startswith("area_critical_share_"):
        window = name.rsplit("_", 1)[1]
        return f"share of inspections in the same area in the last {window} with a critical violation"
    if name.startswith("area_inspections_"):
        return f"number of inspections in the same area in the last {name.rsplit('_', 1)[1]}"
    return None


AREA = FeatureFamily(
    name="area",
    build=_build_area,
    describe=_describe_area,
    keys=(
        Key(
            "neighbourhood.area_field",
            "string",
            False,
            "not used",
            "canonical inspections field naming an area (area family)",
        ),
        Key(
            "neighbourhood.area_window_days",
            "list of integers",
            False,
            "[]",
            "windows for the area's recent outcomes",
        ),
    ),
    needs=lambda document: (
        None if present(document, "neighbourhood.area_field") else "needs neighbourhood.area_field"
    ),
)
