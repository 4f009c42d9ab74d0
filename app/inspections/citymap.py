"""A city's boundaries as SVG paths, drawn offline: no tiles, fonts or scripts from anywhere else."""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely

MAP_WIDTH = 640.0
PADDING = 8.0


@dataclass(frozen=True)
class Area:
    name: str
    path: str  # SVG path data in map pixels


@dataclass(frozen=True)
class CityMap:
    """Boundaries projected to a fixed-width SVG canvas (equirectangular, scaled by cos(latitude))."""

    width: float
    height: float
    areas: tuple[Area, ...]
    west: float
    north: float
    scale_x: float
    scale_y: float

    def project(self, latitude: float, longitude: float) -> tuple[float, float]:
        return (
            round(PADDING + (longitude - self.west) * self.scale_x, 1),
            round(PADDING + (self.north - latitude) * self.scale_y, 1),
        )

    def contains(self, x: float, y: float) -> bool:
        return 0 <= x <= self.width and 0 <= y <= self.height


def _read_features(path: Path) -> list[dict[str, Any]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as handle:
        features: list[dict[str, Any]] = json.load(handle)["features"]
    return features


def _outer_rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    """Outer rings only: a point in a hole is rare enough at city scale to count as inside."""
    if geometry["type"] == "Polygon":
        return [geometry["coordinates"][0]]
    if geometry["type"] == "MultiPolygon":
        return [polygon[0] for polygon in geometry["coordinates"]]
    return []


def _rings(geometry: dict[str, Any]) -> list[list[list[float]]]:
    if geometry["type"] == "Polygon":
        return list(geometry["coordinates"])
    if geometry["type"] == "MultiPolygon":
        return [ring for polygon in geometry["coordinates"] for ring in polygon]
    return []


@lru_cache(maxsize=8)
def load_city_map(path: Path, name_property: str) -> CityMap:
    """Read GeoJSON polygons once and project them; consecutive points closer than a pixel are merged."""
    features = _read_features(path)
    rings_by_area = [
        (str(feature["properties"].get(name_property, "")), _rings(feature["geometry"]))
        for feature in features
    ]
    points = [point for _, rings in rings_by_area for ring in rings for point in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    x_per_degree = math.cos(math.radians((north + south) / 2))
    scale = (MAP_WIDTH - 2 * PADDING) / ((east - west) * x_per_degree)
    height = (north - south) * scale + 2 * PADDING
    city_map = CityMap(MAP_WIDTH, round(height, 1), (), west, north, scale * x_per_degree, scale)

    areas = []
    for name, rings in rings_by_area:
        parts = []
        for ring in rings:
            projected: list[tuple[float, float]] = []
            for longitude, latitude, *_ in ring:
                x, y = city_map.project(latitude, longitude)
                if not projected or abs(x - projected[-1][0]) + abs(y - projected[-1][1]) >= 1.0:
                    projected.append((x, y))
            if len(projected) >= 3:
                parts.append("M" + "L".join(f"{x:g},{y:g}" for x, y in projected) + "Z")
        areas.append(Area(name=name, path="".join(parts)))
    return CityMap(
        city_map.width, city_map.height, tuple(areas), west, north, city_map.scale_x, city_map.scale_y
    )


@dataclass(frozen=True)
class _Ring:
    name: str
    polygon: shapely.Polygon
    west: float
    south: float
    east: float
    north: float


@lru_cache(maxsize=8)
def _area_rings(path: Path, name_property: str) -> tuple[_Ring, ...]:
    rings = []
    for feature in _read_features(path):
        name = str(feature["properties"].get(name_property, ""))
        for ring in _outer_rings(feature["geometry"]):
            vertices = np.asarray(ring, dtype="float64")[:, :2]
            west, south = vertices.min(axis=0)
            east, north = vertices.max(axis=0)
            polygon = shapely.Polygon(vertices)
            shapely.prepare(polygon)  # built once, tested against thousands of points
            rings.append(_Ring(name, polygon, west, south, east, north))
    return tuple(rings)


def area_names(
    path: Path, name_property: str, latitude: Sequence[float], longitude: Sequence[float]
) -> list[str | None]:
    """The boundary area each point falls in (None outside every area or without coordinates).

    Each ring is tested only against the points inside its bounding box.
    """
    lon = np.asarray(longitude, dtype="float64")
    lat = np.asarray(latitude, dtype="float64")
    found: list[str | None] = [None] * len(lon)
    unassigned = ~(np.isnan(lon) | np.isnan(lat))
    for ring in _area_rings(path, name_property):
        candidates = np.flatnonzero(
            unassigned & (lon >= ring.west) & (lon <= ring.east) & (lat >= ring.south) & (lat <= ring.north)
        )
        if len(candidates) == 0:
            continue
        inside = shapely.contains_xy(ring.polygon, lon[candidates], lat[candidates])
        for index in candidates[inside]:
            found[index] = ring.name
        unassigned[candidates[inside]] = False
    return found
