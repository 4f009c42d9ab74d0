"""Lead risk for one child at a visit: home → place → features as of the visit → score and reasons.

The same features as `training/lead/features.build_features` (tests compare the two), computed for one
child in well under a millisecond: everything that does not depend on the child (the city's earlier
blood tests in a k-d tree, tract and community-area feature rows, the address and boundary indexes) is
built once per lead config and reused by every request. Nothing about a child is kept: the inputs
live only in this call's local variables.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from scipy.spatial import cKDTree

from app.exceptions import ModelUnavailable
from app.services.lead_scoring import NumericLinear, compile_numeric_linear
from app.services.records import RecordBatch
from app.services.registry import LoadedModel, ModelRegistry
from training.address import AddressIndex, AddressNotFound
from training.bundle import content_hash
from training.geo import GeoIndex
from training.ingest import to_day, to_xyz
from training.lead.config import LeadConfig
from training.lead.features import HISTORY_FEATURES, SAME_ADDRESS_KM
from training.lead.reference import AREA_FEATURES, TRACT_FEATURES
from training.lead.train import load_lead_data

LEAD_TASK = "lead_risk"
TOP_REASONS = 3


class OutsideArea(Exception):
    """The home is not in the city's service area (or its address is not one the resolver knows)."""

    def __init__(self, not_found: bool) -> None:
        super().__init__("address not found" if not_found else "outside the service area")
        self.not_found = not_found


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


@dataclass(frozen=True)
class LeadResult:
    score: float
    tier: str
    reasons: list[Reason]  # the largest contributions, largest first
    model: LoadedModel


def _point_locator(geo: GeoIndex) -> Any:
    """One point → (tract, community area) without the per-call pandas of `GeoIndex.locate` (~2 ms):
    the index's own trees and prepared shapes, queried for one point (~30 µs). It reads GeoIndex's
    private fields; `training.geo` has no single-point API yet (proposed in the issue 6 report)."""

    def locate(latitude: float, longitude: float) -> tuple[str | None, int | None]:
        x, y = geo._xy(np.asarray([latitude]), np.asarray([longitude]))
        points = shapely.points(x, y)
        tract_index = int(geo._lookup(geo._tract_tree, geo._tracts, points)[0])
        area_index = int(geo._lookup(geo._area_tree, geo._areas, points)[0])
        tract = str(geo.tract_ids[tract_index]) if tract_index >= 0 else None
        if area_index >= 0:
            return tract, int(geo.area_ids[area_index])
        if tract_index >= 0 and int(geo.tract_area[tract_index]) >= 0:
            return tract, int(geo.tract_area[tract_index])  # the lake-shore gap, as locate_many does
        return tract, None

    return locate


class LeadEngine:
    """Per lead config: the indexes and tables every request reads (built once, read-only after)."""

    def __init__(self, config_path: Path) -> None:
        data = load_lead_data(config_path, progress=lambda _message: None)
        config: LeadConfig = data.config
        self.config = config
        self.threshold = config.threshold
        self.horizon_days = config.horizon_days
        self.radius_km = config.block_radius_m / 1000.0
        self._addresses: AddressIndex = data.reference.addresses()
        self._locate = _point_locator(data.reference.geo)
        self._tracts = {
            str(tract): row
            for tract, row in zip(data.reference.tracts.index, data.reference.tracts.to_numpy(), strict=True)
        }
        self._areas = {
            int(area): row
            for area, row in zip(data.reference.areas.index, data.reference.areas.to_numpy(), strict=True)
        }
        self._nan_tract = np.full(len(TRACT_FEATURES), np.nan)
        self._nan_area = np.full(len(AREA_FEATURES), np.nan)
        tests = data.outcomes.tests
        self._test_xyz = to_xyz(tests["latitude"], tests["longitude"])
        self._test_day = to_day(tests["test_date"])
        self._test_elevated = tests["result"].to_numpy(dtype="float64") >= config.threshold
        self._tree = cKDTree(self._test_xyz)

    def place(self, home: Home) -> tuple[float, float, str | None, int]:
        """Coordinates, tract and community area of a home; raises OutsideArea."""
        if home.latitude is not None and home.longitude is not None:
            latitude, longitude = home.latitude, home.longitude
        else:
            try:
                match = self._addresses.resolve(home.address)
            except AddressNotFound:
                # The exception holds the address; it is dropped here, never logged or returned.
                raise OutsideArea(not_found=True) from None
            latitude, longitude = match.latitude, match.longitude
        tract, area = self._locate(latitude, longitude)
        if area is None:
            raise OutsideArea(not_found=False)
        return latitude, longitude, tract, area

    def history(self, latitude: float, longitude: float, as_of: date) -> np.ndarray:
        """HISTORY_FEATURES: earlier tests (and elevated ones) at the address and within the block."""
        point = to_xyz([latitude], [longitude])[0]
        near = np.asarray(self._tree.query_ball_point(point, self.radius_km), dtype=np.intp)
        before = self._test_day[near] < np.datetime64(as_of, "D").astype("int64")
        near = near[before]
        elevated = self._test_elevated[near]
        at_address = np.linalg.norm(self._test_xyz[near] - point, axis=1) <= SAME_ADDRESS_KM
        tests_address, tests_block = float(at_address.sum()), float(len(near))
        elevated_address, elevated_block = float((elevated & at_address).sum()), float(elevated.sum())
        return np.asarray(
            [
                tests_address,
                elevated_address,
                elevated_address / tests_address if tests_address else np.nan,
                tests_block,
                elevated_block,
                elevated_block / tests_block if tests_block else np.nan,
            ]
        )

    def features(self, birth: date, as_of: date, home: Home) -> dict[str, float]:
        """FEATURES (training/lead/features.py) for one child; raises OutsideArea."""
        latitude, longitude, tract, area = self.place(home)
        values: dict[str, float] = {"age_days": float((as_of - birth).days)}
        tract_row = self._tracts.get(tract, self._nan_tract) if tract is not None else self._nan_tract
        values.update(zip(TRACT_FEATURES, tract_row.tolist(), strict=True))
        values.update(zip(AREA_FEATURES, self._areas.get(area, self._nan_area).tolist(), strict=True))
        values.update(zip(HISTORY_FEATURES, self.history(latitude, longitude, as_of).tolist(), strict=True))
        return values


_ENGINES: dict[Path, LeadEngine] = {}
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

    def __init__(self, registry: ModelRegistry, data_dir: Path, model_name: str | None) -> None:
        self.registry = registry
        self.data_dir = Path(data_dir)
        self.model_name = model_name
        self._compiled_models: dict[str, NumericLinear | None] = {}

    def model(self) -> LoadedModel:
        """The lead model of the current snapshot: by configured name, else the first lead bundle."""
        snapshot = self.registry.snapshot
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
        return _ENGINES.get(self.config_path(model))

    def engine(self, model: LoadedModel) -> LeadEngine:
        """Build (once per process and config, ~5-8 s: the city's test history, the address index)
        or return the engine. Shared by every app in the process: it holds only city data."""
        global _ENGINES
        path = self.config_path(model)
        engine = _ENGINES.get(path)
        if engine is None:
            with _ENGINES_LOCK:
                engine = _ENGINES.get(path)
                if engine is None:
                    if not path.is_file():
                        raise ModelUnavailable(f"the lead model's city config is missing ({path.name})")
                    _check_reference_data(path.parent, model)
                    engine = LeadEngine(path)
                    # Replaced, not mutated: readers without the lock see the old dict or the new one.
                    _ENGINES = _ENGINES | {path: engine}
        return engine

    def warm_up(self) -> None:
        """Build the engine for the served lead model, if there is one (run at start-up)."""
        try:
            self.engine(self.model())
        except ModelUnavailable:
            return

    def _compiled(self, model: LoadedModel) -> NumericLinear | None:
        key = model.fingerprint
        if key not in self._compiled_models:
            self._compiled_models[key] = compile_numeric_linear(model.bundle.estimator, model.layout.names)
        return self._compiled_models[key]

    def score(
        self, engine: LeadEngine, model: LoadedModel, birth: date, as_of: date, home: Home
    ) -> LeadResult:
        """Score one child; raises OutsideArea (the caller checks eligibility by age first)."""
        values = engine.features(birth, as_of, home)
        layout = model.layout
        if layout.categorical:
            raise ModelUnavailable(f"model {model.name!r} has categorical features; not a lead model")
        row = np.asarray([values.get(name, np.nan) for name in layout.names], dtype=np.float64)
        compiled = self._compiled(model)
        if compiled is None:
            result = model.score_batch(RecordBatch(numeric=row[None, :], categorical=()))[0]
            reasons = [
                Reason(
                    r["feature"],
                    r["value"],
                    r["contribution"],
                    model.descriptions[layout.names.index(r["feature"])],
                )
                for r in result["reasons"]
            ]
            return LeadResult(float(result["score"]), str(result["tier"]), reasons, model)
        score, contributions = compiled.score(row)
        top = sorted(range(len(row)), key=lambda j: abs(contributions[j]), reverse=True)[:TOP_REASONS]
        reasons = [
            Reason(
                layout.names[j],
                None if math.isnan(row[j]) else float(row[j]),
                float(contributions[j]),
                model.descriptions[j],
            )
            for j in top
        ]
        return LeadResult(score, model.tiers.label_one(score), reasons, model)
