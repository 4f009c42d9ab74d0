"""Inspectors' daily list: roster → features → scores with reasons → ranked, filtered, stored.

Blocking: callers run `issue` in a worker thread. Each list is computed once: concurrent requests
for it share one computation (in this process), and a claim in the database makes one process of
all workers and replicas compute it (app/inspections/claimed.py). Ranking a new date runs in a
bounded pool (app/inspections/list_pool.py: in the calling thread, or in long-lived list processes
forked from this one, app/inspections/list_process.py). A ranked day is cached per (city, date,
model, data revision), least recently used out, so a second list for the same day (another filter,
a CSV download) only filters and stores.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import partial
from itertools import islice
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa

from app.inspections.areas import resolve as resolve_areas
from app.inspections.cities import CityStore
from app.inspections.city_data import CityDataVersions
from app.inspections.citymap import area_names
from app.inspections.claimed import ClaimTimes, issue_once
from app.inspections.errors import ListNotFound
from app.inspections.list_pool import ListPool
from app.inspections.list_process import RankerProcess, RankRequest, Stale
from app.inspections.precompute import ListsAhead
from app.inspections.ranked_rows import REASONS, RankedRows, json_column
from app.inspections.reasons import score_inspections, worded_reasons
from app.inspections.single_flight import SingleFlight
from app.platform.errors import InvalidRequest, ModelUnavailable, Problem, ServiceError
from app.platform.heap import collector_paused
from app.platform.registry import LoadedModel, ModelRegistry
from app.platform.storage.list_claims import ListKey
from app.platform.storage.repository import IssuedList, OutcomeWrite, Repository
from app.scoring.types import MISSING_CATEGORY, RecordBatch
from training.serving import (
    CityData,
    build_roster,
    parse_violation_codes,
    prepare_indexes,
    today_in,
)

TIER_ORDER = {"low": 0, "medium": 1, "high": 2}
MAX_DAYS_AFTER_DATA = 14  # a list further ahead would rest on stale neighbourhood features
MIN_DAYS_OF_HISTORY = 365
TIE_RULE = "score descending, then longest since last inspection, then establishment id"
INSPECTION_TASK = "inspection_risk"
API_DEFAULT_LIMIT = 100  # GET /v1/inspections/{city}/daily
PAGE_DEFAULT_LIMIT = 50  # GET /inspector
LIST_FORMAT = 2  # part of every list's key: bump when the same inputs would give other rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DailyOptions:
    """How lists are computed (the CIVICRISK_DAILY_* settings)."""

    concurrency: int = 1
    max_wait_seconds: float = 20.0
    claim_timeout_seconds: float = 120.0
    cache_days: int = 8
    child_process: bool = False
    precompute: bool = True
    precompute_min_interval_seconds: float = 30.0


@dataclass(frozen=True)
class DailyQuery:
    city: str
    list_date: date | None
    limit: int
    facility_type: str | None = None
    zip: str | None = None
    community_area: str | None = None
    min_tier: str = "low"
    areas: tuple[tuple[str, str], ...] = ()  # (name, value) filters the city's [areas] declares

    def parameters(self, resolved_date: date) -> dict[str, Any]:
        areas = {"areas": dict(self.areas)} if self.areas else {}  # absent: lists keyed as before
        return {
            "date": resolved_date.isoformat(),
            "limit": self.limit,
            "facility_type": self.facility_type,
            "zip": self.zip,
            "community_area": self.community_area,
            "min_tier": self.min_tier,
            "tie_rule": TIE_RULE,
        } | areas


@dataclass(frozen=True)
class RankedDay:
    """Every in-scope establishment for a day, scored and ranked (before filters)."""

    model: LoadedModel
    list_date: date
    rows: RankedRows  # each row's dict built when first read


class DailyLists:
    """Issues daily lists from the city's data (plus recorded outcomes) and its default model."""

    def __init__(
        self,
        cities: CityStore,
        registry: ModelRegistry,
        repository: Callable[[], Repository],
        options: DailyOptions | None = None,
    ) -> None:
        self.cities = cities
        self.registry = registry
        self.repository = repository
        self.options = options or DailyOptions()
        rankers = (
            [
                RankerProcess(self._rank_request, self._after_fork, self._before_fork)
                for _ in range(self.options.concurrency)
            ]
            if self.options.child_process
            else None
        )
        self.pool = ListPool(self.options.concurrency, self.options.max_wait_seconds, rankers)
        self.ahead = ListsAhead(
            self.precompute, self.options.precompute, self.options.precompute_min_interval_seconds
        )
        self._ranked: OrderedDict[tuple[Any, ...], RankedDay] = OrderedDict()
        self._ranking: SingleFlight[RankedDay] = SingleFlight()
        self._issuing: SingleFlight[IssuedList] = SingleFlight()
        self._versions = CityDataVersions(lambda city: self.cities.city(city).data, repository)
        self._area_memo: dict[str, dict[tuple[float, float], str | None]] = {}
        self._lock = threading.Lock()

    def model_for(self, city: str) -> LoadedModel:
        candidates = [
            model
            for model in self.registry.snapshot.for_city(city)
            if model.manifest.get("task", INSPECTION_TASK) == INSPECTION_TASK
        ]
        if not candidates:
            raise ModelUnavailable(f"no inspection model is loaded for city {city!r}")
        return candidates[0]

    def city_data(self, city: str, list_date: date | None = None) -> CityData:
        """The city's files plus the outcomes recorded through the API: current, or for a list of
        `list_date`, a build that holds the same rows before that day (app/inspections/city_data.py)."""
        return self._versions.data(city, list_date)

    def loaded_cities(self) -> list[str]:
        """Cities whose data this process has read (metrics report them without loading others)."""
        return self._versions.cities()

    def date_range(self, data: CityData) -> tuple[date, date]:
        first, last = data.date_range
        return (first + timedelta(days=MIN_DAYS_OF_HISTORY)).date(), (
            last + timedelta(days=MAX_DAYS_AFTER_DATA)
        ).date()

    def resolve_date(self, data: CityData, requested: date | None) -> date:
        earliest, latest = self.date_range(data)
        last_data = data.date_range[1].date()
        chosen = requested or last_data + timedelta(days=1)
        if not earliest <= chosen <= latest:
            raise InvalidRequest(
                f"date {chosen} is outside the range lists can be drawn for: {earliest} .. {latest}",
                (
                    Problem(
                        ("query", "date"),
                        f"the city's data runs to {last_data}; choose a date from {earliest} to {latest}",
                    ),
                ),
            )
        return chosen

    def data_for_day(self, city: str, requested: date | None) -> tuple[CityData, date]:
        """The data a list of `requested` (default: the day after the data) is drawn from, and the
        day, checked. For a given day, outcomes recorded for that day or later need no rebuild."""
        if requested is not None:
            data = self.city_data(city, requested)
            earliest, latest = self.date_range(data)
            if earliest <= requested <= latest:  # else: newer outcomes may widen the range
                return data, requested
        data = self.city_data(city)
        return data, self.resolve_date(data, requested)

    def ranked_day(self, city: str, requested: date | None, here: bool = False) -> RankedDay:
        """The day's ranked rows; `here`: ranked in this process, never in a list process (a
        server about to fork its workers keeps no child of its own)."""
        data, list_date = self.data_for_day(city, requested)  # first: an unknown city is a 404
        model = self.model_for(city)
        return self._ranked_day(data, model, list_date, here)

    def _ranked_day(
        self, data: CityData, model: LoadedModel, list_date: date, here: bool = False
    ) -> RankedDay:
        cached = self._cached_day(data, model, list_date)
        if cached is not None:
            return cached
        key = _day_key(data, model, list_date)
        return self._ranking.run(key, lambda: self._rank_and_keep(key, data, model, list_date, here))

    def _cached_day(self, data: CityData, model: LoadedModel, list_date: date) -> RankedDay | None:
        key = _day_key(data, model, list_date)
        with self._lock:
            if key in self._ranked:
                self._ranked.move_to_end(key)
                return self._ranked[key]
        return None

    def _rank_and_keep(
        self, key: tuple[Any, ...], data: CityData, model: LoadedModel, list_date: date, here: bool
    ) -> RankedDay:
        with self._lock:  # a computation that finished just before this one began
            if key in self._ranked:
                return self._ranked[key]
        revision = _data_revision(data, list_date)
        city = data.config.city
        version = self._versions.built_from(city, data)
        outcomes, recorded = (None, None) if version is None else (version.revision, version.recorded)
        request = RankRequest(city, list_date, model.fingerprint, revision, outcomes, recorded)
        rows = self.pool.run(lambda: self._rank(data, model, list_date), None if here else request)
        ranked = RankedDay(model, list_date, rows)
        with self._lock:
            self._ranked[key] = ranked
            while len(self._ranked) > self.options.cache_days:
                self._ranked.popitem(last=False)
        return ranked

    def _rank_request(self, request: RankRequest) -> RankedRows | Stale:
        """In a list process: the request's rows, or why its model or data is not here. Nothing here
        opens the database (app/inspections/city_data.py, `as_built_from`)."""
        # A model the server loaded after the fork: the server forks this process again. Not loaded
        # here: loading checks a bundle's predictions, and OpenMP's threads do not survive a fork.
        model = self._model_with(request.city, request.model_fingerprint)
        if model is None:
            return Stale.MODEL
        outcomes = request.outcomes
        data = (
            None
            if outcomes is None
            else self._versions.as_built_from(request.city, outcomes, request.recorded)
        )
        if data is None or _data_revision(data, request.list_date) != request.data_revision:
            return Stale.DATA
        return self._rank(data, model, request.list_date)

    def _model_with(self, city: str, fingerprint: str) -> LoadedModel | None:
        return next(
            (model for model in self.registry.snapshot.for_city(city) if model.fingerprint == fingerprint),
            None,
        )

    def _before_fork(self, request: RankRequest) -> None:
        """Before forking a list process: the city's radius indexes built here, so that every list
        process shares one copy of them (~80 MB for Chicago) rather than building its own."""
        prepare_indexes(self.city_data(request.city))

    def _after_fork(self) -> None:
        """First thing in a list process: no lock or database connection of the server's threads."""
        self._lock = threading.Lock()
        self._versions.after_fork()
        self.cities.after_fork()
        self.registry.after_fork()
        self.repository().engine.dispose(close=False)

    def close(self) -> None:
        """No more lists computed ahead; the list processes stopped."""
        self.ahead.stop()
        self.pool.close()

    def _rank(self, data: CityData, model: LoadedModel, list_date: date) -> RankedRows:
        with collector_paused():
            return self._rank_now(data, model, list_date)

    def _rank_now(self, data: CityData, model: LoadedModel, list_date: date) -> RankedRows:
        roster = build_roster(data, pd.Timestamp(list_date))
        if roster.establishments.empty:
            return RankedRows.empty()
        layout = model.layout
        features = roster.features
        batch = RecordBatch(
            numeric=features[list(layout.numeric)].to_numpy(dtype="float64"),
            categorical=tuple(
                features[name].astype("string").fillna(MISSING_CATEGORY).astype(str).tolist()
                for name in layout.categorical
            ),
        )
        scored = score_inspections(model, batch, data.config.severity_names)
        establishments = roster.establishments.reset_index(drop=True)
        # TIE_RULE: score, then the longest since the last inspection, then establishment id. The
        # roster comes sorted by establishment id, so a stable sort on the first two keys is it.
        last = establishments["last_inspection_date"].to_numpy(dtype="datetime64[ns]")
        order = np.lexsort((last, -scored.scores))
        columns: dict[str, pa.Array | None] = {
            str(name): json_column(establishments[name]) for name in establishments.columns
        }
        columns["score"] = json_column(scored.scores)
        columns["tier"] = pa.array(scored.tiers, type=pa.string())
        columns[REASONS] = None  # the rows' reasons are `scored.reasons`
        areas = self._areas(data, establishments["latitude"], establishments["longitude"])
        columns["community_area"] = pa.array(areas, type=pa.string())
        in_order = tuple(None if values is None else values.take(order) for values in columns.values())
        return RankedRows(tuple(columns), in_order, scored.reasons.take(order))

    def _areas(self, data: CityData, latitude: pd.Series, longitude: pd.Series) -> list[str | None]:
        """Each point's boundary area, remembered per coordinate: establishments rarely move."""
        config = data.config
        if config.map_boundaries is None:
            return [None] * len(latitude)
        known = self._area_memo.setdefault(config.city, {})
        # Plain float lists: iterating the (Arrow-backed) Series themselves took a quarter of a list.
        located = (latitude.notna() & longitude.notna()).tolist()
        lats = latitude.to_numpy(dtype="float64", na_value=float("nan")).tolist()
        lons = longitude.to_numpy(dtype="float64", na_value=float("nan")).tolist()
        points = [(lat, lon) if ok else None for lat, lon, ok in zip(lats, lons, located, strict=True)]
        new = [point for point in dict.fromkeys(points) if point is not None and point not in known]
        if new:
            names = area_names(
                config.map_boundaries, config.map_name_property, [p[0] for p in new], [p[1] for p in new]
            )
            known.update(zip(new, names, strict=True))
        return [None if point is None else known[point] for point in points]

    def issue(self, query: DailyQuery) -> IssuedList:
        """Rank, filter, keep the top `limit`, store the list and return it as stored; or the list
        stored before for the same inputs, or the one another request is computing meanwhile."""
        data, list_date = self.data_for_day(query.city, query.list_date)
        if query.community_area or query.areas:
            community_area, areas = resolve_areas(data, query.community_area, query.areas)
            query = dataclasses.replace(query, community_area=community_area, areas=areas)
        model = self.model_for(query.city)
        ranked = self._cached_day(data, model, list_date)
        if ranked is not None:  # ranked here already: filtering and storing costs less than a claim
            return self._issue_from(ranked, query)
        key = self._list_key(query, data, model, list_date)
        times = ClaimTimes(self.options.max_wait_seconds * 2, self.options.claim_timeout_seconds)

        def compute_and_store() -> IssuedList:
            return self._issue_from(self._ranked_day(data, model, list_date), query)

        return self._issuing.run(
            key.sha256, lambda: issue_once(self.repository(), key, times, compute_and_store)
        )

    def _issue_from(self, ranked: RankedDay, query: DailyQuery) -> IssuedList:
        # Filters read the day's columns; rows are built for the `limit` that match only.
        matching = (ranked.rows[position] for position in islice(_matching(ranked.rows, query), query.limit))
        layout = ranked.model.layout  # reasons are put in words for the rows issued only
        rows = [
            {"rank": rank, **row, "reasons": worded_reasons(row, layout)}
            for rank, row in enumerate(matching, start=1)
        ]
        return self.repository().issue_list(
            city=query.city,
            list_date=ranked.list_date,
            model_name=ranked.model.name,
            model_version=ranked.model.version,
            parameters=query.parameters(ranked.list_date) | {"in_scope": len(ranked.rows)},
            rows=rows,
        )

    def _list_key(self, query: DailyQuery, data: CityData, model: LoadedModel, list_date: date) -> ListKey:
        """Everything a list's rows follow from: the same key, the same list."""
        parameters = query.parameters(list_date)
        document = {
            "format": LIST_FORMAT,
            "city": query.city,
            "model": [model.name, model.version, model.fingerprint],
            "parameters": parameters,
            "data": _data_revision(data, list_date),
        }
        digest = hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()
        return ListKey(digest, query.city, list_date, model.version, parameters)

    def precompute(self) -> None:
        """Tomorrow's default lists (the API's and the inspectors' page's) for every city with an
        inspection model, stored ahead; cheap when they already are."""
        for city in sorted(self.cities.configs()):
            try:
                self.model_for(city)
            except ServiceError:
                continue
            for limit in (API_DEFAULT_LIMIT, PAGE_DEFAULT_LIMIT):
                issued = self.issue(DailyQuery(city, None, limit))
                log.info(
                    "daily list ready",
                    extra={"city": city, "date": issued.list_date.isoformat(), "list_id": issued.id},
                )

    def stored(self, list_id: int) -> IssuedList:
        issued = self.repository().get_list(list_id)
        if issued is None:
            raise ListNotFound(f"no list with id {list_id}")
        return issued

    def record_outcomes(self, city: str, outcomes: Sequence[Any]) -> OutcomeWrite:
        """Validate every outcome against the city's config, then store them all or none."""
        data = self.cities.city(city).data  # 404 for an unknown city
        config = data.config
        known_results = set(data.inspections["result"].dropna()) | set(config.drop_results)
        today = today_in(config.timezone)  # the city's date: 23:30 in New York is tomorrow in UTC
        problems: list[Problem] = []
        for index, outcome in enumerate(outcomes):
            where = ("body", "outcomes", index)
            if outcome.result not in known_results:
                problems.append(
                    Problem((*where, "result"), f"unknown result; use one of {sorted(known_results)}")
                )
            if outcome.date > today:
                problems.append(Problem((*where, "date"), f"{outcome.date} is in the future"))
            problems.extend(
                Problem((*where, "violations"), text) for text in _violation_problems(outcome, config)
            )
        if problems:
            raise InvalidRequest(
                f"{len(problems)} problem(s) in the outcomes; nothing was stored", tuple(problems)
            )
        records = [
            {
                "inspection_id": outcome.inspection_id,
                "establishment_id": outcome.establishment_id,
                "inspection_date": outcome.date,
                "inspection_type": outcome.inspection_type,
                "result": outcome.result,
                "violations": outcome.violations,
            }
            for outcome in outcomes
        ]
        written = self.repository().record_outcomes(city, records)
        if written.created:
            self.ahead.soon()  # tomorrow's lists change with the new history
        return written


def _violation_problems(outcome: Any, config: Any) -> list[str]:
    """Each entry of the violations text must start with a code the city's severity map knows."""
    text = outcome.violations
    if not text or not text.strip():
        return []
    problems = []
    for number, entry in enumerate(text.split(config.entry_separator), start=1):
        codes = parse_violation_codes(entry, config.entry_separator, config.code_pattern)
        if not codes:
            problems.append(
                f"entry {number} does not start with a violation number (e.g. '2. TITLE - Comments: ...')"
            )
        elif codes[0] not in config.severity_by_code:
            problems.append(f"entry {number}: violation code {codes[0]} is not in the city's severity map")
    return problems


def _day_key(data: CityData, model: LoadedModel, list_date: date) -> tuple[Any, ...]:
    return (data.config.city, list_date, model.fingerprint, _data_revision(data, list_date))


def _data_revision(data: CityData, list_date: date) -> tuple[int, str]:
    """What distinguishes versions of the city's data as a list for `list_date` sees it: the rows
    dated before that day (recorded outcomes only ever add rows) and where the data starts.

    A list for a day reads nothing dated on or after it (point-in-time features and roster), so an
    outcome recorded for a later day leaves earlier days' lists, and their cached rankings, as
    they were."""
    first, _ = data.date_range
    return data.inspections_before(pd.Timestamp(list_date)), first.isoformat()


def _matching(rows: RankedRows, query: DailyQuery) -> Iterator[int]:
    """Positions of the rows that pass the query's filters, in rank order."""
    if not len(rows):
        return iter(())
    minimum = TIER_ORDER[query.min_tier]
    tests: list[tuple[list[Any], Callable[[Any], bool]]] = [
        (rows.column("tier"), lambda tier: TIER_ORDER[tier] >= minimum)
    ]
    equal = [(f"area_{name}", value) for name, value in query.areas]  # (column, the value it must hold)
    if query.facility_type:
        equal.append(("facility_type", query.facility_type))
    if query.community_area:
        equal.append(("community_area", query.community_area))
    for column, value in equal:
        if column not in rows.names:  # a filter on a field the city's rows lack: nothing matches
            return iter(())
        tests.append((rows.column(column), partial(operator.eq, value)))
    if query.zip:
        zip_code = query.zip
        tests.append((rows.column("zip"), lambda code: str(code or "") == zip_code))
    return (i for i in range(len(rows)) if all(test(values[i]) for values, test in tests))
