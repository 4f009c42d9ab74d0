"""Routes for a team: the top of a day's list split into one compact group per inspector, each
ordered as a short path that visits the riskiest places early.

Straight lines only: with no road network offline, a route's length is the sum of straight-line
(great-circle) distances between consecutive stops, which underestimates the distance driven.

1. Groups: size-constrained k-means on the stops' coordinates (km on a local plane). Centres start
   far apart (the riskiest stop, then each time the stop farthest from every centre so far); each
   round assigns stops to centres as a minimum-cost assignment with every centre capped at
   `ceil(stops / inspectors)` stops (the Hungarian method over the centres' slots), then moves each
   centre to its stops' mean, until nothing changes.
2. Order: the group's stops in waves by list rank (the riskier half first, then the rest); within a
   wave a nearest-neighbour path from the riskiest stop (or from where the last wave ended),
   improved by 2-opt moves until none shortens it. One wave is the shortest path the method finds;
   two keep the riskiest places early at some cost in length (bench/route_bench.py measures both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from training.serving import EARTH_RADIUS_KM

MAX_ROUNDS = 50
WAVES = 2
METHOD = f"size-constrained k-means, then nearest neighbour + 2-opt in {WAVES} waves by list rank"


@dataclass(frozen=True)
class Place:
    """A stop to route: its rank in the list and its coordinates."""

    rank: int
    latitude: float
    longitude: float


def plan(places: Sequence[Place], inspectors: int, waves: int = WAVES) -> list[list[int]]:
    """Positions in `places` per route, in visiting order; routes ordered by their riskiest stop."""
    if not places:
        return []
    groups = compact_groups(places, inspectors)
    routes = [order_route(places, group, waves) for group in groups if group]
    return sorted(routes, key=lambda route: min(places[i].rank for i in route))


def local_km(places: Sequence[Place]) -> np.ndarray:
    """Coordinates in km on a plane tangent at the places' mean latitude (fine across a city)."""
    latitude = np.array([p.latitude for p in places])
    longitude = np.array([p.longitude for p in places])
    per_degree = math.pi * EARTH_RADIUS_KM / 180
    x = (longitude - longitude.mean()) * per_degree * math.cos(math.radians(float(latitude.mean())))
    y = (latitude - latitude.mean()) * per_degree
    return np.column_stack([x, y])


def compact_groups(places: Sequence[Place], inspectors: int) -> list[list[int]]:
    """`inspectors` groups of at most ceil(n / inspectors) places each, compact on the map."""
    points = local_km(places)
    n = len(points)
    k = max(1, min(inspectors, n))
    capacity = math.ceil(n / k)
    centres = _spread_centres(points, [p.rank for p in places], k)
    slots = np.repeat(np.arange(k), capacity)  # each centre's capacity as that many columns
    assigned = np.full(n, -1)
    for _ in range(MAX_ROUNDS):
        cost = ((points[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        rows, columns = linear_sum_assignment(cost[:, slots])
        new = np.empty(n, dtype=int)
        new[rows] = slots[columns]
        if np.array_equal(new, assigned):
            break
        assigned = new
        centres = np.array([points[assigned == c].mean(axis=0) for c in range(k)])
    return [np.flatnonzero(assigned == c).tolist() for c in range(k)]


def _spread_centres(points: np.ndarray, ranks: Sequence[int], k: int) -> np.ndarray:
    """The riskiest place, then each time the place farthest from every centre chosen so far."""
    chosen = [int(np.argmin(ranks))]
    nearest = ((points - points[chosen[0]]) ** 2).sum(axis=1)
    while len(chosen) < k:
        far = int(np.argmax(nearest))
        chosen.append(far)
        nearest = np.minimum(nearest, ((points - points[far]) ** 2).sum(axis=1))
    return points[chosen].astype(float)


def order_route(places: Sequence[Place], group: Sequence[int], waves: int = WAVES) -> list[int]:
    """The group's places in visiting order: waves by rank, each a short path (NN + 2-opt)."""
    by_rank = sorted(group, key=lambda i: places[i].rank)
    size = math.ceil(len(by_rank) / max(1, waves))
    route: list[int] = []
    for start in range(0, len(by_rank), size):
        wave = by_rank[start : start + size]
        route.extend(_short_path(places, wave, route[-1] if route else None))
    return route


def _short_path(places: Sequence[Place], wave: Sequence[int], after: int | None) -> list[int]:
    """A short open path through `wave`: from the riskiest place when it opens the route, else from
    the place nearest to `after`; nearest neighbour, then 2-opt with the first place kept."""
    points = local_km([places[i] for i in wave])
    distance = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)).tolist()
    if after is None:
        first = 0  # the wave is in rank order: its riskiest place
    else:
        previous = local_km([places[after], *(places[i] for i in wave)])
        first = int(np.argmin(((previous[1:] - previous[0]) ** 2).sum(axis=1)))
    path = [first]
    left = set(range(len(wave))) - {first}
    while left:
        here = distance[path[-1]]
        step = min(left, key=lambda j: (here[j], j))
        path.append(step)
        left.remove(step)
    path = _two_opt(path, distance)
    return [wave[j] for j in path]


def _two_opt(path: list[int], distance: list[list[float]]) -> list[int]:
    """Reverse any segment whose reversal shortens the open path, until none does; the first stop
    stays first (it is the riskiest place, or the one nearest the last wave's end)."""
    n = len(path)
    improved = True
    while improved:
        improved = False
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b = path[i - 1], path[i]
                c = path[j]
                before = distance[a][b]
                after = distance[a][c]
                if j + 1 < n:
                    d = path[j + 1]
                    before += distance[c][d]
                    after += distance[b][d]
                if after < before - 1e-9:
                    path[i : j + 1] = reversed(path[i : j + 1])
                    improved = True
    return path


def path_km(places: Sequence[Place], route: Sequence[int]) -> float:
    """Straight-line (great-circle) length of the route, stop to stop, in km."""
    total = 0.0
    for a, b in zip(route, route[1:], strict=False):
        total += great_circle_km(places[a], places[b])
    return total


def great_circle_km(a: Place, b: Place) -> float:
    lat1, lat2 = math.radians(a.latitude), math.radians(b.latitude)
    dlat, dlon = lat2 - lat1, math.radians(b.longitude - a.longitude)
    h = math.sin(dlat / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
