"""Place and test history of every address the resolver knows, worked out once per lead engine.

A home at a known address (an exact or nearest-number match, or coordinates equal to a known
point) then costs one dictionary probe and two bisections, instead of a point-in-polygon test and
a k-d tree query with its filtering: about a quarter of a lead request's own work (bench/README.md).
Any other home (an interpolated house number, coordinates off the table) takes the general path in
`LeadEngine`, and tests hold both paths to training's features. Everything here is city data: the
resolver's own address points and the city's earlier tests, never anything a request sent.
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree

from training.serving import to_xyz

# Points queried at a time: the tree answers in Python lists, ~30 ints a point, so all 57,000 Chicago
# points at once would hold ~1.7 million int objects (+130 MB at start-up) before they become arrays.
CHUNK = 4096
INT32_MIN = int(np.iinfo(np.int32).min)


class NeighbourCounts:
    """Per known point, the days of the tests within `radius_km` of it, ascending, all points'
    lists laid end to end, with a running count of the elevated ones. "Tests before day d" is then
    one bisection inside the point's range, and "elevated ones among them" two look-ups."""

    def __init__(
        self, tree: cKDTree, xyz: np.ndarray, radius_km: float, days: np.ndarray, elevated: np.ndarray
    ) -> None:
        lengths, flat = [], []
        for start in range(0, len(xyz), CHUNK):
            lists = tree.query_ball_point(xyz[start : start + CHUNK], radius_km, return_sorted=True)
            counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
            lengths.append(counts)
            flat.append(
                np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64, count=int(counts.sum()))
            )
        neighbours = np.concatenate(flat) if flat else np.empty(0, dtype=np.int64)
        starts = np.r_[0, np.cumsum(np.concatenate(lengths))] if lengths else np.zeros(1)
        # array("i"), not lists: millions of entries at 4 bytes each, and nothing for the garbage
        # collector to walk. A test without a date (to_day's int64 sentinel) becomes int32's least
        # value: still before every real day, as training counts it.
        self._starts = array("i", starts.astype(np.int32).tobytes())
        self._days = array("i", np.maximum(days[neighbours], INT32_MIN).astype(np.int32).tobytes())
        running = np.r_[0, np.cumsum(elevated[neighbours].astype(np.int64))]
        self._elevated = array("i", running.astype(np.int32).tobytes())

    def __len__(self) -> int:
        return len(self._days)

    def before(self, point: int, day: int) -> tuple[int, int]:
        """(tests, elevated tests) near `point` dated before `day`."""
        low, high = self._starts[point], self._starts[point + 1]
        position = bisect.bisect_left(self._days, day, low, high)
        return position - low, self._elevated[position] - self._elevated[low]


class KnownHomes:
    """(latitude, longitude) of each known address -> its tract, community area and neighbours."""

    def __init__(
        self,
        points: Sequence[tuple[float, float]],
        locate: Callable[[float, float], tuple[int, int]],
        tree: cKDTree,
        radii_km: tuple[float, float],
        test_days: np.ndarray,
        test_elevated: np.ndarray,
    ) -> None:
        """`tree` holds the tests in the order of `test_days` (ascending), so a point's neighbours,
        listed in index order, are in date order too."""
        self._places = {
            point: (index, *locate(*point)) for index, point in enumerate(points)
        }  # index, tract, area
        xyz = to_xyz([lat for lat, _ in points], [lon for _, lon in points]) if points else np.empty((0, 3))
        block, address = radii_km
        self.block = NeighbourCounts(tree, xyz, block, test_days, test_elevated)
        self.address = NeighbourCounts(tree, xyz, address, test_days, test_elevated)

    def __len__(self) -> int:
        return len(self._places)

    def get(self, latitude: float, longitude: float) -> tuple[int, int, int] | None:
        """(point, tract index or -1, community area or -1) for a known point, else None."""
        return self._places.get((latitude, longitude))
