"""Lead risk for one child at a visit: home → place → features as of the visit → score and reasons.

The same features as `training/lead/features.build_features` (tests compare the two), computed for one
child in well under a millisecond: everything that does not depend on the child (the city's earlier
blood tests in a k-d tree, tract and community-area feature rows, the address and boundary indexes,
and each known address's place and nearby tests) is built once per lead config and reused by every
request (and, for any other home near a known address, its 40 m cell's nearby tests and the boundary
shapes that meet the cell: app/hospitals/nearby_tests.py). Nothing about a child is
kept: the inputs live only in this call's local variables.
"""

from __future__ import annotations

import bisect
import math
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from app.hospitals.errors import OutsideArea
from app.hospitals.known_homes import KnownHomes
from app.hospitals.nearby_tests import NearbyTests
from app.platform.errors import ModelUnavailable
from app.platform.registry import LoadedModel, ModelRegistry, Snapshot
from app.scoring.explain import TOP_REASONS, largest
from app.scoring.linear import CompiledLinear
from app.scoring.types import RecordBatch, RecordRows
from training.serving import (
    AREA_FEATURES,
    AREA_OUTCOME_FEATURES,
    EARTH_RADIUS_KM,
    SAME_ADDRESS_KM,
    TRACT_FEATURES,
    AddressIndex,
    AddressNotFound,
    LeadConfig,
    PointLocator,
    content_hash,
    load_lead_data,
    to_day,
    to_xyz,
)
from training.serving import LEAD_FEATURES as FEATURES

LEAD_TASK = "lead_risk"
EPOCH = date(1970, 1, 1)  # to_day counts days from here
# The area's published rate and its year: computed with the features, shown in the answer text only.
AREA_YEAR, AREA_RATE = FEATURES.index("area_outcome_year"), FEATURES.index("area_outcome_rate")
# One reason for the home area as a whole. Where a model reads the area's real outcome history, the
# area-level census features only adjust that history's level and their coefficients offset each other,
# so one by one they read as nonsense to a clinician ("lowers risk: community area's share of housing
# built before 1940 is 52%"); their contributions and the history's are added into one reason, shown
# with the area's recent real rate (its value: the log of that rate relative to the city's).
HOME_AREA = "home_area"
HOME_AREA_DESCRIPTION = "the home area's real lead-poisoning rate and census profile"
HOME_AREA_VALUE = "area_outcome_log_ratio_mean"


@dataclass(frozen=True)
class Home:
    """Where the child lives: an address line, or coordinates (which skip the resolver)."""

    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Reason:
    feature: str
    value: float | None
    contribution: float  # log-odds, relative to the training mean
    description: str
    # The model's training mean of this input (linear models), against which the contribution's
    # sign reads: "lowers risk: ... is 34%" surprises unless the reader sees the average is 41%.
    average: float | None = None


@dataclass(frozen=True)
class ReasonLayout:
    """How a model's contributions become reasons, worked out once per model: `home_area`, the
    positions added into one home-area reason (empty: every feature is its own reason), `others` the
    rest, `home_area_value` the position whose value the home-area reason shows (-1: none), and, when
    the model has them (linear models), each feature's training mean and its coefficient's sign."""

    home_area: tuple[int, ...]
    others: tuple[int, ...]
    home_area_value: int
    averages: tuple[float | None, ...] = ()
    signs: tuple[float, ...] = ()

    @classmethod
    def of(
        cls, names: tuple[str, ...], averages: tuple[float | None, ...] = (), signs: tuple[float, ...] = ()
    ) -> ReasonLayout:
        every = tuple(range(len(names)))
        if not any(name in AREA_OUTCOME_FEATURES for name in names):
            return cls((), every, -1, averages, signs)
        area_level = {*AREA_FEATURES, *AREA_OUTCOME_FEATURES}
        home_area = tuple(j for j in every if names[j] in area_level)
        value = names.index(HOME_AREA_VALUE) if HOME_AREA_VALUE in names else -1
        return cls(home_area, tuple(j for j in every if j not in home_area), value, averages, signs)

    def reasons(
        self,
        names: tuple[str, ...],
        descriptions: tuple[str, ...],
        row: tuple[float, ...],
        contributions: list[float],
    ) -> list[Reason]:
        """The TOP_REASONS largest contributions, the home area's counted as one."""
        ranked = [contributions[j] for j in self.others]
        if self.home_area:
            ranked.append(math.fsum(contributions[j] for j in self.home_area))
        reasons = []
        for k in largest(ranked, TOP_REASONS):
            if k == len(self.others):
                value = row[self.home_area_value] if self.home_area_value >= 0 else math.nan
                reasons.append(
                    Reason(HOME_AREA, None if math.isnan(value) else value, ranked[k], HOME_AREA_DESCRIPTION)
                )
                continue
            j = self.others[k]
            known = None if math.isnan(row[j]) else row[j]
            average = self.averages[j] if self.averages else None
            # Said only where it tells the contribution's direction: a feature whose missing-value
            # indicator weighs (a share of earlier tests that were elevated) can raise the risk
            # below its average, and "raises risk: ... is 0% (training average 1%)" would read wrong.
            if known is None or average is None or contributions[j] * (known - average) * self.signs[j] <= 0:
                average = None
            reasons.append(Reason(names[j], known, contributions[j], descriptions[j], average))
        return reasons


@dataclass(frozen=True)
class LeadResult:
    score: float
    tier: str
    reasons: list[Reason]  # the largest contributions, largest first
    model: LoadedModel
    area_rate: tuple[int, float] | None = None  # (year, % of tested children) of the home's area, if known


class LeadEngine:
    """Per lead config: the indexes and tables every request reads (built once, read-only after).

    The request path is plain Python over precomputed tables wherever that is cheaper than numpy:
    for one child, each numpy call costs more than the arithmetic it does.
    """

    def __init__(self, config_path: Path, known_homes: bool = True) -> None:
        data = load_lead_data(config_path, progress=lambda _message: None)
        config: LeadConfig = data.config
        self.config = config
        self.threshold = config.threshold
        self.horizon_days = config.horizon_days
        self.radius_km = config.block_radius_m / 1000.0
        self._addresses: AddressIndex = data.reference.addresses()
        geo = data.reference.geo
        self._locator = PointLocator(geo)
        # Place features by the locator's answers: the tract's row by its index in geo.tract_ids,
        # the community area's by its number; NaN rows for a place the tables do not cover.
        tracts, areas = data.reference.tracts, data.reference.areas
        nan_tract = [math.nan] * len(TRACT_FEATURES)
        self._tract_rows = [
            tracts.loc[str(tract)].tolist() if str(tract) in tracts.index else nan_tract
            for tract in geo.tract_ids
        ]
        self._nan_tract = nan_tract
        self._area_rows = {
            int(area): row.tolist() for area, row in zip(areas.index, areas.to_numpy(), strict=True)
        }
        self._nan_area = [math.nan] * len(AREA_FEATURES)
        # The home area's real outcome history (training/lead/area_outcomes.py), when the city has it.
        self._outcomes = data.reference.area_outcomes
        self._by_tract = self._outcomes is not None and self._outcomes.spec.area_level == "tract"
        self._tract_ids = [str(tract) for tract in geo.tract_ids]
        self._nan_outcomes = [math.nan] * (len(FEATURES) - FEATURES.index("area_outcome_log_ratio"))
        # The city's earlier tests in date order, so "tested before the as-of date" is "at a position
        # before the as-of date's insertion point": one bisection, then integer comparisons.
        # (Sorted by to_day's numbers, which put a missing date first, as training's comparison does.)
        tests = data.outcomes.tests
        unordered_days = to_day(tests["test_date"])
        order = np.argsort(unordered_days, kind="stable")
        days = unordered_days[order]
        elevated = (tests["result"].to_numpy(dtype="float64") >= config.threshold)[order]
        self._test_days: list[int] = days.tolist()
        self._test_elevated: list[int] = elevated.astype(int).tolist()
        self._tree = cKDTree(to_xyz(tests["latitude"], tests["longitude"])[order])
        # The elevated tests alone (the same coordinates): when every test predates the visit, the
        # counts are two counting queries, no index lists.
        self._elevated_tree = cKDTree(self._tree.data[elevated])
        self._radii = np.array((self.radius_km, SAME_ADDRESS_KM))  # the block, the address
        # Every address the resolver knows, with its place and neighbours (app/hospitals/known_homes.py);
        # without `known_homes` the table is empty and every home takes the general path.
        self.known = KnownHomes(
            self._addresses.points() if known_homes else [],
            self._locator.locate,
            self._tree,
            (self.radius_km, SAME_ADDRESS_KM),
            days,
            elevated,
        )
        # Any other home near a known address: its cell's tests, worked out once (nearby_tests.py).
        self.nearby = NearbyTests(
            np.asarray(self._addresses.points()) if known_homes else np.empty((0, 2)),
            self._tree,
            (self.radius_km, SAME_ADDRESS_KM),
            days,
            elevated,
        )
        # Where each of those cells lies: the tract and area shapes that meet it (most lie in one).
        self._cell_places = self._locator.box_grids(*self.nearby.cell_bounds())

    def coordinates(self, home: Home) -> tuple[float, float]:
        """Where a home is: its coordinates, or its address resolved; raises OutsideArea."""
        if home.latitude is not None and home.longitude is not None:
            return home.latitude, home.longitude
        try:
            match = self._addresses.resolve(home.address)
        except AddressNotFound:
            # The exception holds the address; it is dropped here, never logged or returned.
            raise OutsideArea(not_found=True) from None
        return match.latitude, match.longitude

    def history(self, latitude: float, longitude: float, as_of: date) -> list[float]:
        """HISTORY_FEATURES: earlier tests (and elevated ones) at the address and within the block,
        for any point (a known address point answers from `self.known` instead)."""
        return self._history_in(self.nearby.cell(latitude, longitude), latitude, longitude, as_of)

    def _history_in(self, cell: int | None, latitude: float, longitude: float, as_of: date) -> list[float]:
        """`history` for a point in `cell` of `self.nearby` (None: in no prepared cell, so the tree)."""
        # to_xyz's arithmetic, for one point without numpy.
        lat, lon = math.radians(latitude), math.radians(longitude)
        cos_lat = math.cos(lat)
        point = (
            EARTH_RADIUS_KM * cos_lat * math.cos(lon),
            EARTH_RADIUS_KM * cos_lat * math.sin(lon),
            EARTH_RADIUS_KM * math.sin(lat),
        )
        day = (as_of - EPOCH).days
        counted = self.tree_counts(point, day) if cell is None else self.nearby.counts(cell, point, day)
        return _history(*counted)

    def tree_counts(self, point: tuple[float, float, float], day: int) -> tuple[int, int, int, int]:
        """(tests, elevated) at the address and within the block before `day`, from the tree: for a
        point whose cell `self.nearby` has not prepared."""
        earlier = bisect.bisect_left(self._test_days, day)
        elevated = self._test_elevated.__getitem__
        # The same distance test as training's sparse_distance_matrix (the tree's), both radii in
        # one query.
        pair = np.array((point, point))
        if earlier == len(self._test_days):  # every test predates the day (today's visits)
            block_tests, address_tests = self._tree.query_ball_point(pair, self._radii, return_length=True)
            block_elevated, address_elevated = self._elevated_tree.query_ball_point(
                pair, self._radii, return_length=True
            )
            return int(address_tests), int(address_elevated), int(block_tests), int(block_elevated)
        near_block, near_address = self._tree.query_ball_point(pair, self._radii)
        block = [i for i in near_block if i < earlier]
        address = [i for i in near_address if i < earlier]
        return len(address), sum(map(elevated, address)), len(block), sum(map(elevated, block))

    def feature_vector(self, birth: date, as_of: date, home: Home) -> list[float]:
        """FEATURES (training/lead/features.py), in that order, for one child; raises OutsideArea."""
        latitude, longitude = self.coordinates(home)
        known = self.known.get(latitude, longitude)
        if known is not None:
            point, tract, area = known
            day = (as_of - EPOCH).days
            history = _history(*self.known.address.before(point, day), *self.known.block.before(point, day))
        else:
            # Any other home: in a prepared cell, its place from the cell's few shapes and its history
            # from the cell's tests; elsewhere the whole city's grid and tree.
            cell = self.nearby.cell(latitude, longitude)
            if cell is None:
                tract, area = self._locator.locate(latitude, longitude)
            else:
                tract, area = self._locator.locate_in_box(self._cell_places, cell, latitude, longitude)
            if area >= 0:
                history = self._history_in(cell, latitude, longitude, as_of)
        if area < 0:
            raise OutsideArea(not_found=False)
        return [
            float((as_of - birth).days),
            *(self._tract_rows[tract] if tract >= 0 else self._nan_tract),
            *self._area_rows.get(area, self._nan_area),
            *history,
            *self._area_outcomes(tract, area, as_of),
        ]

    def _area_outcomes(self, tract: int, area: int, as_of: date) -> list[float]:
        if self._outcomes is None:
            return self._nan_outcomes
        if self._by_tract:
            return self._outcomes.row(self._tract_ids[tract], as_of) if tract >= 0 else self._nan_outcomes
        return self._outcomes.row(area, as_of)


def _history(tests_address: int, elevated_address: int, tests_block: int, elevated_block: int) -> list[float]:
    """HISTORY_FEATURES, in their order, from the four counts."""
    return [
        float(tests_address),
        float(elevated_address),
        elevated_address / tests_address if tests_address else math.nan,
        float(tests_block),
        float(elevated_block),
        elevated_block / tests_block if tests_block else math.nan,
    ]


_ENGINES: dict[tuple[Path, bool], LeadEngine] = {}  # by city config, and with the known homes or not
_ENGINES_LOCK = threading.Lock()


def _check_reference_data(folder: Path, model: LoadedModel) -> None:
    """Serve a lead bundle only on the reference files it was trained on (the manifest's content hash):
    the same model on other tract or address tables would answer with unvalidated features."""
    data = model.manifest.get("data", {})
    names, expected = data.get("files"), data.get("content_hash")
    if not names or not expected:
        raise ModelUnavailable(f"model {model.name!r} records no reference-data hash; refusing to serve it")
    files = [folder / str(name) for name in names]
    missing = [path.name for path in files if not path.is_file()]
    if missing:
        raise ModelUnavailable(f"the lead model's reference files are missing: {', '.join(missing)}")
    actual = content_hash(files)
    if actual != expected:
        raise ModelUnavailable(
            f"the lead model's reference files differ from those it was trained on "
            f"(content hash {actual[:12]}…, bundle {str(expected)[:12]}…)"
        )


class LeadService:
    """The served lead model and its engine; the engine is built on first use (or by `warm_up`)."""

    def __init__(
        self, registry: ModelRegistry, data_dir: Path, model_name: str | None, known_homes: bool = True
    ) -> None:
        self.registry = registry
        self.data_dir = Path(data_dir)
        self.model_name = model_name
        self.known_homes = known_homes
        self._orders: dict[str, tuple[tuple[int, ...], ReasonLayout]] = {}
        # The request path's lookups, worked out once per snapshot and per model (both immutable).
        self._chosen: tuple[Snapshot | None, LoadedModel | None] = (None, None)
        self._ready: dict[str, LeadEngine] = {}

    def model(self) -> LoadedModel:
        """The lead model of the current snapshot: by configured name, else the first lead bundle."""
        snapshot = self.registry.snapshot
        seen, model = self._chosen
        if seen is not snapshot or model is None:
            model = self._choose(snapshot)
            self._chosen = (snapshot, model)  # one tuple: a reader sees the old pair or the new one
        return model

    def _choose(self, snapshot: Snapshot) -> LoadedModel:
        if self.model_name is not None:
            return snapshot.get(self.model_name)
        for name in sorted(snapshot.models):
            model = snapshot.get(name)
            if model.manifest.get("task") == LEAD_TASK:
                return model
        raise ModelUnavailable("no lead-risk model is loaded")

    def config_path(self, model: LoadedModel) -> Path:
        """The city's lead config named in the bundle, under the data directory."""
        file = model.manifest.get("city_config", {}).get("file")
        if not file:
            raise ModelUnavailable(f"model {model.name!r} names no city config")
        return self.data_dir / model.city / str(file)

    def ready_engine(self, model: LoadedModel) -> LeadEngine | None:
        """The engine if it is built already (the request path: no lock, no thread hop)."""
        engine = self._ready.get(model.fingerprint)
        if engine is None:
            engine = _ENGINES.get((self.config_path(model), self.known_homes))
            if engine is not None:
                self._ready = self._ready | {model.fingerprint: engine}
        return engine

    def engine(self, model: LoadedModel) -> LeadEngine:
        """Build (once per process and config, ~5-8 s: the city's test history, the address index)
        or return the engine. Shared by every app in the process: it holds only city data."""
        global _ENGINES
        path = self.config_path(model)
        key = (path, self.known_homes)
        engine = _ENGINES.get(key)
        if engine is None:
            with _ENGINES_LOCK:
                engine = _ENGINES.get(key)
                if engine is None:
                    if not path.is_file():
                        raise ModelUnavailable(f"the lead model's city config is missing ({path.name})")
                    _check_reference_data(path.parent, model)
                    engine = LeadEngine(path, self.known_homes)
                    # Replaced, not mutated: readers without the lock see the old dict or the new one.
                    _ENGINES = _ENGINES | {key: engine}
        return engine

    def warm_up(self) -> None:
        """Build the engine for the served lead model, if there is one (run at start-up)."""
        try:
            self.engine(self.model())
        except ModelUnavailable:
            return

    def _order(self, model: LoadedModel) -> tuple[tuple[int, ...], ReasonLayout]:
        """Where each of the model's features is in the engine's FEATURES (-1: not one of them, so
        unknown), how its contributions become reasons and each feature's training mean (linear
        models), worked out once per model."""
        key = model.fingerprint
        found = self._orders.get(key)
        if found is None:
            if model.layout.categorical:
                raise ModelUnavailable(f"model {model.name!r} has categorical features; not a lead model")
            names = model.layout.names
            order = tuple(FEATURES.index(name) if name in FEATURES else -1 for name in names)
            averages: tuple[float | None, ...] = ()
            signs: tuple[float, ...] = ()
            if isinstance(model.scorer, CompiledLinear):
                numeric = model.layout.numeric
                mean = dict(zip(numeric, model.scorer.mean.tolist(), strict=True))
                sign = dict(zip(numeric, np.sign(model.scorer.coef).tolist(), strict=True))
                averages = tuple(mean.get(name) for name in names)
                signs = tuple(sign.get(name, 0.0) for name in names)
            found = (order, ReasonLayout.of(names, averages, signs))
            self._orders = self._orders | {key: found}
        return found

    def score(
        self, engine: LeadEngine, model: LoadedModel, birth: date, as_of: date, home: Home
    ) -> LeadResult:
        """Score one child; raises OutsideArea (the caller checks eligibility by age first)."""
        order, reason_layout = self._order(model)
        vector = engine.feature_vector(birth, as_of, home)
        year, rate = vector[AREA_YEAR], vector[AREA_RATE]
        area_rate = None if math.isnan(rate) else (int(year), rate)
        vector.append(math.nan)  # what position -1 in `order` (a feature not computed here) reads
        row = tuple(map(vector.__getitem__, order))
        layout, scorer = model.layout, model.scorer
        if not isinstance(scorer, CompiledLinear):
            # The generic explainer returns its top features only, so no home-area reason here: a
            # non-linear lead model's reasons are per feature.
            result = model.score_batch(
                RecordBatch(numeric=np.asarray([row], dtype=np.float64), categorical=())
            )[0]
            reasons = [
                Reason(
                    r["feature"],
                    r["value"],
                    r["contribution"],
                    model.descriptions[layout.names.index(r["feature"])],
                )
                for r in result["reasons"]
            ]
            return LeadResult(float(result["score"]), str(result["tier"]), reasons, model, area_rate)
        # The model's own compiled scorer, in plain Python for one row (exact contributions).
        scored = scorer.score_rows(RecordRows(numeric=[row], categorical=()))
        score, contributions = scored.scores[0], scored.contributions[0]
        reasons = reason_layout.reasons(layout.names, model.descriptions, row, contributions)
        return LeadResult(score, model.tiers.label_one(score), reasons, model, area_rate)
