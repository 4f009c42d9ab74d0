"""A city's data as daily lists see it: its files plus the outcomes recorded through the API.

Rebuilt only when a list could see the difference. A list for day D reads nothing dated on or after
D (app/inspections/daily.py, `_data_revision`), so outcomes recorded for D or later leave the data a
list for D is drawn from as it was. Inspectors post today's results all day while lists of earlier
and later days are asked: in the soak (bench/soak.py) each post made the next daily request of every
worker rebuild the city's data, one rebuild per post.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

from app.platform.storage.repository import Repository
from training.serving import CityData, with_recorded_outcomes

Revision = tuple[int, datetime | None]  # (count, latest receipt) of a city's recorded outcomes


@dataclass(frozen=True)
class CityVersion:
    """A build of a city's data: from which files, and from which recorded outcomes."""

    base: CityData
    revision: Revision
    recorded_dates: np.ndarray  # datetime64[D] of each recorded outcome it includes
    recorded_receipts: np.ndarray  # object: each one's received_at
    recorded: list[dict[str, Any]]  # the outcomes as read (for a list process lacking this build)
    data: CityData

    def revision_before(self, day: date) -> Revision:
        """The revision of the recorded outcomes dated before `day` that this build includes, in
        the repository's terms (`Repository.outcomes_revision(city, before=day)`)."""
        earlier = self.recorded_dates < np.datetime64(day, "D")
        if not earlier.any():
            return 0, None
        return int(earlier.sum()), max(self.recorded_receipts[earlier])


class CityDataVersions:
    """The latest build of each city's data, and when it still serves a list of a given day."""

    def __init__(self, files: Callable[[str], CityData], repository: Callable[[], Repository]) -> None:
        self.files = files
        self.repository = repository
        self._versions: dict[str, CityVersion] = {}
        self._rebuilt: dict[str, CityVersion] = {}  # another process's build, made again here
        self._lock = threading.Lock()

    def after_fork(self) -> None:
        self._lock = threading.Lock()

    def cities(self) -> list[str]:
        """The cities whose data this process has built."""
        return sorted(self._versions)

    def data(self, city: str, list_date: date | None = None) -> CityData:
        """The city's data: current, or (for a list of `list_date`) the same as current before that day."""
        base = self.files(city)  # first: an unknown city is a 404
        repository = self.repository()
        version = self._versions.get(city)
        if version is not None and version.base is base and self._serves(version, city, list_date):
            return version.data
        # One rebuild at a time: requests arriving after an outcomes post would each build a copy.
        with self._lock:
            version = self._versions.get(city)
            if version is None or version.base is not base or not self._serves(version, city, list_date):
                version = _build(base, repository.outcomes(city))
                self._versions[city] = version
            return version.data

    def built_from(self, city: str, data: CityData) -> CityVersion | None:
        """The build `data` comes from, if it is this process's latest build of the city."""
        version = self._versions.get(city)
        return version if version is not None and version.data is data else None

    def as_built_from(
        self, city: str, revision: Revision, recorded: list[dict[str, Any]] | None = None
    ) -> CityData | None:
        """The city's data as another process built it from the recorded outcomes of `revision`:
        a build of the same revision held here, else one made from `recorded` (that build's rows,
        sent along), else None. Never from the database: a forked list process must not open a
        connection (another thread of its server may have held the database library's locks at the
        fork, and the child would wait on them for ever)."""
        base = self.files(city)
        for version in (self._versions.get(city), self._rebuilt.get(city)):
            if version is not None and version.base is base and version.revision == revision:
                return version.data
        if recorded is None:
            return None
        version = _build(base, recorded)
        if version.revision != revision:
            return None
        self._rebuilt[city] = version  # the server's next requests likely carry the same outcomes
        return version.data

    def _serves(self, version: CityVersion, city: str, list_date: date | None) -> bool:
        repository = self.repository()
        if list_date is not None:
            return version.revision_before(list_date) == repository.outcomes_revision(city, before=list_date)
        return version.revision == repository.outcomes_revision(city)


def _build(base: CityData, outcomes: list[dict[str, Any]]) -> CityVersion:
    """The revision is the one of the outcomes read (a post between the revision query and this
    read is included, and stated)."""
    recorded = pd.DataFrame(outcomes)
    if recorded.empty:
        empty = np.array([], dtype="datetime64[D]")
        return CityVersion(base, (0, None), empty, np.array([], dtype=object), [], base)
    # From the rows as read, not the frame: pandas would turn receipts into its own timestamps.
    dates = np.array([outcome["inspection_date"] for outcome in outcomes], dtype="datetime64[D]")
    receipts = np.array([outcome["received_at"] for outcome in outcomes], dtype=object)
    revision = (len(recorded), max(receipts))
    data = with_recorded_outcomes(base, recorded.rename(columns={"inspection_date": "date"}))
    return CityVersion(base, revision, dates, receipts, outcomes, data)
