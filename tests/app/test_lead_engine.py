"""The hospital endpoint's one-child engine computes training's features and the model's own score."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from app_helpers import MODELS_DIR, REPO_ROOT

from app.services.lead_risk import Home, LeadEngine, LeadService, OutsideArea
from app.services.registry import LoadedModel, ModelRegistry
from training.lead.features import FEATURES, build_features
from training.lead.train import load_lead_data

DATA_DIR = REPO_ROOT / "data" / "sample"
LEAD_CONFIG = DATA_DIR / "chicago" / "lead.toml"


@pytest.fixture(scope="module")
def service() -> LeadService:
    registry = ModelRegistry(MODELS_DIR)
    registry.reload()
    return LeadService(registry, DATA_DIR, None)


@pytest.fixture(scope="module")
def model(service: LeadService) -> LoadedModel:
    return service.model()


@pytest.fixture(scope="module")
def engine(service: LeadService, model: LoadedModel) -> LeadEngine:
    return service.engine(model)


@pytest.fixture(scope="module")
def homes() -> pd.DataFrame:
    """Real homes and visit dates: the city's own address points (many on tract-boundary streets),
    the synthetic cohort's tested homes (busy blocks, repeat tests at one address) and dates
    spread over the test history, so counts before the date vary."""
    data = load_lead_data(LEAD_CONFIG, progress=lambda _message: None)
    rng = np.random.default_rng(7)
    points = pd.read_csv(DATA_DIR / "chicago" / "address_points.csv.gz").sample(300, random_state=7)
    tests = data.outcomes.tests.sample(300, random_state=7)
    dates = pd.to_datetime(rng.choice(pd.date_range("2006-01-01", "2016-12-31").to_numpy(), 600))
    return pd.DataFrame(
        {
            "latitude": np.r_[points["latitude"].to_numpy(), tests["latitude"].to_numpy()],
            "longitude": np.r_[points["longitude"].to_numpy(), tests["longitude"].to_numpy()],
            "as_of": dates,
            "birth_date": dates - pd.to_timedelta(rng.integers(0, 360, 600), unit="D"),
        }
    )


def _training_features(homes: pd.DataFrame) -> pd.DataFrame:
    data = load_lead_data(LEAD_CONFIG, progress=lambda _message: None)
    place = data.reference.geo.locate_many(homes["latitude"], homes["longitude"])
    queries = homes.assign(tract=place["tract"], community_area=place["community_area"])
    config = data.config
    return build_features(
        queries, data.outcomes.tests, data.reference, config.threshold, config.block_radius_m
    )


def test_features_are_trainings(engine: LeadEngine, homes: pd.DataFrame) -> None:
    expected = _training_features(homes)
    got = pd.DataFrame(
        [
            engine.feature_vector(
                row.birth_date.date(), row.as_of.date(), Home(latitude=row.latitude, longitude=row.longitude)
            )
            for row in homes.itertuples()
        ],
        columns=list(FEATURES),
    )
    # The homes meet every case: history at the address and on the block, none, and NaN shares.
    assert (got["prior_tests_address"] > 0).sum() > 20 and (got["prior_tests_block"] == 0).sum() > 20
    assert (got["prior_tests_block"] > 64).sum() > 10  # busy blocks
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_exact=False, rtol=1e-12)


def test_score_is_the_estimators(
    service: LeadService, engine: LeadEngine, model: LoadedModel, homes: pd.DataFrame
) -> None:
    expected = model.bundle.estimator.predict_proba(_training_features(homes)[list(model.layout.names)])[:, 1]
    got = [
        service.score(
            engine,
            model,
            row.birth_date.date(),
            row.as_of.date(),
            Home(latitude=row.latitude, longitude=row.longitude),
        ).score
        for row in homes.itertuples()
    ]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)


def test_reasons_add_up_and_come_largest_first(
    service: LeadService, engine: LeadEngine, model: LoadedModel
) -> None:
    today = date.today()
    result = service.score(
        engine, model, today - timedelta(days=200), today, Home(address="1600 W Division St")
    )
    sizes = [abs(reason.contribution) for reason in result.reasons]
    assert len(sizes) == 3 and sizes == sorted(sizes, reverse=True) and sizes[0] > 0
    assert {reason.feature for reason in result.reasons} <= set(model.layout.names)


def test_homes_outside_the_city_or_unknown_are_refused(engine: LeadEngine) -> None:
    today = date.today()
    with pytest.raises(OutsideArea) as outside:
        engine.feature_vector(today, today, Home(latitude=41.5, longitude=-87.3))  # Indiana
    assert not outside.value.not_found
    with pytest.raises(OutsideArea) as unknown:
        engine.feature_vector(today, today, Home(address="99999 N Nowhere Blvd"))
    assert unknown.value.not_found
