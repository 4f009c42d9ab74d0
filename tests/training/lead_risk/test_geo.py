"""Point-in-polygon: real Chicago points, points outside, the edge buffer and the lake-shore fallback."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import box

from training.geo import GeoIndex, OutsideServiceArea, PointLocator, load_geo_index
from training.lead.config import LeadConfig
from training.lead.reference import Reference


def test_reference_readme_checkpoints(reference: Reference) -> None:
    loop = reference.geo.locate(41.8781, -87.6298)
    assert (loop.community_area, loop.tract) == (32, "17031839100")
    assert reference.geo.locate(41.7943, -87.5907).community_area == 41  # Hyde Park


@pytest.mark.parametrize(
    ("latitude", "longitude"),
    [(40.7128, -74.0060), (41.90, -87.50), (42.10, -87.70), (float("nan"), -87.63)],
    ids=["new-york", "lake-michigan", "evanston-north", "missing"],
)
def test_points_outside_the_city_raise_outside_service_area(
    reference: Reference, latitude: float, longitude: float
) -> None:
    with pytest.raises(OutsideServiceArea):
        reference.geo.locate(latitude, longitude)


def test_locate_many_marks_outside_rows_missing(reference: Reference) -> None:
    frame = reference.geo.locate_many([41.8781, 40.7128, np.nan], [-87.6298, -74.0060, np.nan])
    assert frame["community_area"].tolist()[0] == 32
    assert frame["community_area"].isna().tolist() == [False, True, True]
    assert frame["tract"].isna().tolist() == [False, True, True]


def _square_city() -> GeoIndex:
    # A 0.01-degree tract, and a community-area shape covering only its western half (as at a lake shore).
    tract = box(-87.70, 41.80, -87.69, 41.81)
    area = box(-87.70, 41.80, -87.695, 41.81)
    return GeoIndex(["T1"], [tract], [7], [7], [area])


def test_edge_buffer_accepts_points_within_50_m_only() -> None:
    city = _square_city()
    metres_per_degree_lat = 110_574.0
    just_outside = 41.81 + 30 / metres_per_degree_lat
    too_far = 41.81 + 120 / metres_per_degree_lat
    assert city.locate(just_outside, -87.698).tract == "T1"
    with pytest.raises(OutsideServiceArea):
        city.locate(too_far, -87.698)


def test_tract_assignment_is_the_fallback_when_no_area_shape_covers_the_point() -> None:
    city = _square_city()
    east_half = city.locate(41.805, -87.6915)  # in the tract, > 50 m from the area shape
    assert (east_half.tract, east_half.community_area) == ("T1", 7)


def test_index_is_built_once(lead_config: LeadConfig, reference: Reference) -> None:
    """One index per set of boundary files (their speed is bench/lead_bench.py's to measure)."""
    again = load_geo_index(
        lead_config.tracts,
        lead_config.community_areas,
        lead_config.tract_id,
        lead_config.tract_community_area,
        lead_config.community_area_id,
    )
    assert again is reference.geo
    assert reference.geo.locate(41.8781, -87.6298).community_area == 32  # the Loop


def test_sampled_points_fall_inside_their_tract(reference: Reference) -> None:
    lat, lon = reference.geo.sample_points("17031839100", 20, np.random.default_rng(0))
    tracts = reference.geo.locate_many(lat, lon)["tract"]
    assert (tracts == "17031839100").all()
    assert all(math.isfinite(v) for v in lat)


def _expected(geo: GeoIndex, lat: np.ndarray, lon: np.ndarray) -> list[tuple[int, int]]:
    """locate_many's answers in PointLocator's terms: (tract index or -1, area number or -1)."""
    found = geo.locate_many(lat, lon)
    position = {str(tract): i for i, tract in enumerate(geo.tract_ids)}
    return [
        (-1 if pd.isna(tract) else position[str(tract)], -1 if pd.isna(area) else int(area))
        for tract, area in zip(found["tract"], found["community_area"], strict=True)
    ]


def test_point_locator_answers_as_locate_many_does(reference: Reference) -> None:
    """Everywhere, and above all where the grid cannot decide alone: on and near every boundary."""
    geo = reference.geo
    rng = np.random.default_rng(3)
    anywhere_lat, anywhere_lon = rng.uniform(41.60, 42.05, 3000), rng.uniform(-87.97, -87.50, 3000)
    # Tract and community-area corners, nudged by up to ~2 m and by up to ~80 m (the 50 m edge buffer).
    coordinates = np.concatenate([shapely.get_coordinates(shapes) for shapes in (geo._tracts, geo._areas)])
    corners = coordinates[rng.integers(0, len(coordinates), 4000)]
    nudge = np.r_[rng.uniform(-2, 2, (2000, 2)), rng.uniform(-80, 80, (2000, 2))]
    x, y = (corners + nudge).T
    lat = np.r_[anywhere_lat, y / 110_574.0]
    lon = np.r_[anywhere_lon, x / geo._lon_scale]
    locator = PointLocator(geo)
    got = [locator.locate(a, b) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)]
    assert got == _expected(geo, lat, lon)
    outside = sum(area < 0 for _, area in got)
    assert 500 < outside < len(got) - 500  # both kinds of answer are exercised


def test_point_locator_keeps_the_lake_shore_fallback_and_the_edge_buffer() -> None:
    city = _square_city()
    locator = PointLocator(city, cell_m=50.0)
    lat = np.asarray([41.805, 41.805, 41.81 + 30 / 110_574.0, 41.81 + 120 / 110_574.0])
    lon = np.asarray([-87.6915, -87.699, -87.698, -87.698])
    assert [locator.locate(a, b) for a, b in zip(lat, lon, strict=True)] == _expected(city, lat, lon)
    assert locator.locate(41.805, -87.6915) == (0, 7)
