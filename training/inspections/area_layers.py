"""Area filters drawn from a polygon layer (`[areas.<name>] boundaries = "wards.geojson"`): each
inspection's area is the polygon its coordinates fall in, found once when the city's files are read."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape

from training.geo import read_geojson


@lru_cache(maxsize=8)
def _polygons(path: Path, name_property: str) -> tuple[tuple[str, shapely.Geometry], ...]:
    layer = []
    for feature in read_geojson(path).get("features", []):
        name = str((feature.get("properties") or {}).get(name_property, "")).strip()
        if name and feature.get("geometry"):
            geometry = shape(feature["geometry"])
            shapely.prepare(geometry)
            layer.append((name, geometry))
    return tuple(layer)


def area_of_points(path: Path, name_property: str, latitude: pd.Series, longitude: pd.Series) -> pd.Series:
    """The name of the polygon each point lies in; <NA> outside every polygon or without coordinates.
    Each distinct coordinate is tested once (an establishment's rows share theirs)."""
    points = pd.DataFrame({"lat": latitude.astype("float64"), "lon": longitude.astype("float64")})
    distinct = points.dropna().drop_duplicates()
    names = np.full(len(distinct), None, dtype=object)
    lat, lon = distinct["lat"].to_numpy(), distinct["lon"].to_numpy()
    for name, geometry in _polygons(path, name_property):
        inside = shapely.contains_xy(geometry, lon, lat) & (names == None)  # noqa: E711 (elementwise)
        names[inside] = name
    lookup = dict(zip(zip(lat.tolist(), lon.tolist(), strict=True), names.tolist(), strict=True))
    found = [lookup.get((a, b)) for a, b in zip(points["lat"].tolist(), points["lon"].tolist(), strict=True)]
    return pd.Series(found, index=latitude.index, dtype="string")
