"""The hospital endpoint's one-child engine computes training's features and the model's own score."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from app_helpers import MODELS_DIR, REPO_ROOT

from app.hospitals.errors import OutsideArea
from app.hospitals.lead_risk import HOME_AREA, Home, LeadEngine, LeadService, ReasonLayout
from app.platform.registry import LoadedModel, ModelRegistry
from app.scoring.linear import CompiledLinear
from app.scoring.types import RecordRows
from training.lead.data import LeadData, load_lead_data
from training.lead.features import FEATURES, HISTORY_FEATURES, build_features
from training.points import to_xyz

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
def lead_data() -> LeadData:
    return load_lead_data(LEAD_CONFIG, progress=lambda _message: None)


@pytest.fixture(scope="module")
def homes(lead_data: LeadData) -> pd.DataFrame:
    """Real homes and visit dates: the city's own address points (many on tract-boundary streets),
    the synthetic cohort's tested homes (busy blocks, repeat tests at one address) and dates
    spread over the test history, so counts before the date vary."""
    rng = np.random.default_rng(7)
    points = pd.read_csv(DATA_DIR / "chicago" / "address_points.csv.gz").sample(300, random_state=7)
    tests = lead_data.outcomes.tests.sample(300, random_state=7)
    dates = pd.to_datetime(rng.choice(pd.date_range("2006-01-01", "2016-12-31").to_numpy(), 600))
    return pd.DataFrame(
        {
            "latitude": np.r_[points["latitude"].to_numpy(), tests["latitude"].to_numpy()],
            "longitude": np.r_[points["longitude"].to_numpy(), tests["longitude"].to_numpy()],
            "as_of": dates,
            "birth_date": dates - pd.to_timedelta(rng.integers(0, 360, 600), unit="D"),
        }
    )


@pytest.fixture(scope="module")
def expected(lead_data: LeadData, homes: pd.DataFrame) -> pd.DataFrame:
    """Training's features for the homes (build_features, as the bundle was trained on)."""
    place = lead_data.reference.geo.locate_many(homes["latitude"], homes["longitude"])
    queries = homes.assign(tract=place["tract"], community_area=place["community_area"])
    config = lead_data.config
    features = build_features(
        queries, lead_data.outcomes.tests, lead_data.reference, config.threshold, config.block_radius_m
    )
    return features.reset_index(drop=True)


def test_features_are_trainings(engine: LeadEngine, homes: pd.DataFrame, expected: pd.DataFrame) -> None:
    got = pd.DataFrame(
        [
            engine.feature_vector(
                row.birth_date.date(), row.as_of.date(), Home(latitude=row.latitude, longitude=row.longitude)
            )
            for row in homes.itertuples()
        ],
        columns=list(FEATURES),
    )
    # The homes meet every case: history at the address and on the block, none, and NaN shares;
    # the address points answer from the table of known homes, the tested homes take the general path.
    assert (got["prior_tests_address"] > 0).sum() > 20 and (got["prior_tests_block"] == 0).sum() > 20
    known = [engine.known.get(row.latitude, row.longitude) is not None for row in homes.itertuples()]
    assert sum(known[:300]) == 300 and sum(known[300:]) < 30
    assert (got["prior_tests_block"] > 64).sum() > 10  # busy blocks
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_known_homes_answer_as_the_general_path_does(engine: LeadEngine) -> None:
    """The table of known homes gives, for every date, what locating the point and querying the
    tree give: thousands of points and dates, busy blocks and empty ones."""
    rng = np.random.default_rng(11)
    points = engine._addresses.points()
    chosen = [points[i] for i in rng.choice(len(points), 2000, replace=False)]
    days = rng.integers(date(2005, 1, 1).toordinal(), date(2017, 6, 1).toordinal(), len(chosen))
    compared = busy = 0
    for (latitude, longitude), ordinal in zip(chosen, days.tolist(), strict=True):
        as_of = date.fromordinal(ordinal)
        point, tract, area = engine.known.get(latitude, longitude)  # type: ignore[misc]
        assert (tract, area) == engine._locator.locate(latitude, longitude)
        if area < 0:
            continue
        general = engine.history(latitude, longitude, as_of)
        day = (as_of - date(1970, 1, 1)).days
        counts = (*engine.known.address.before(point, day), *engine.known.block.before(point, day))
        assert counts == (general[0], general[1], general[3], general[4])
        vector = engine.feature_vector(as_of, as_of, Home(latitude=latitude, longitude=longitude))
        start = FEATURES.index(HISTORY_FEATURES[0])
        np.testing.assert_array_equal(vector[start : start + len(HISTORY_FEATURES)], general)
        compared += 1
        busy += general[3] > 64
    assert compared > 1900 and busy > 20


def test_score_is_the_estimators(
    service: LeadService, engine: LeadEngine, model: LoadedModel, homes: pd.DataFrame, expected: pd.DataFrame
) -> None:
    probabilities = model.bundle.estimator.predict_proba(expected[list(model.layout.names)])[:, 1]
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
    np.testing.assert_allclose(got, probabilities, rtol=0, atol=1e-9)


def test_reasons_are_the_largest_of_contributions_that_add_up(
    service: LeadService, engine: LeadEngine, model: LoadedModel
) -> None:
    today, home = date.today(), Home(address="1600 W Division St")
    birth = today - timedelta(days=200)
    result = service.score(engine, model, birth, today, home)
    vector = dict(zip(FEATURES, engine.feature_vector(birth, today, home), strict=True))
    row = tuple(vector[name] for name in model.layout.names)
    scored = model.scorer.score_rows(RecordRows(numeric=[row], categorical=()))
    contributions = scored.contributions[0]
    frame = pd.DataFrame([row], columns=list(model.layout.names))
    logit = float(model.bundle.estimator.decision_function(frame)[0])
    assert scored.baseline + sum(contributions) == pytest.approx(logit, abs=1e-9)
    # The committed model reads the area's real outcome history, so the community area's census
    # features and that history make one "home area" reason: their contributions added up.
    names = model.layout.names
    area_level = [j for j, name in enumerate(names) if name.startswith(("ca_", "area_outcome_"))]
    assert any(names[j].startswith("area_outcome_") for j in area_level)
    candidates = {names[j]: contributions[j] for j in range(len(row)) if j not in area_level}
    candidates[HOME_AREA] = sum(contributions[j] for j in area_level)
    ranked = sorted(candidates, key=lambda name: abs(candidates[name]), reverse=True)[:3]
    assert [reason.feature for reason in result.reasons] == ranked
    assert [reason.contribution for reason in result.reasons] == pytest.approx(
        [candidates[n] for n in ranked]
    )
    if HOME_AREA in ranked:  # shown with the area's recent real rate (log ratio to the city's)
        area_reason = result.reasons[ranked.index(HOME_AREA)]
        assert area_reason.value == vector["area_outcome_log_ratio_mean"]


def test_reasons_name_the_training_average_where_it_tells_their_direction(
    service: LeadService, engine: LeadEngine, model: LoadedModel, homes: pd.DataFrame
) -> None:
    """A reason raises or lowers the risk against the model's average child: its training mean is
    given with it, for a linear model, and only where the value's side of it is the reason's direction
    (a missing-value indicator that weighs can move the break-even point off the mean)."""
    scorer = model.scorer
    assert isinstance(scorer, CompiledLinear)
    numeric = list(model.layout.numeric)
    shown = 0
    for row in homes.head(40).itertuples():
        home = Home(latitude=row.latitude, longitude=row.longitude)
        result = service.score(engine, model, row.birth_date.date(), row.as_of.date(), home)
        for reason in result.reasons:
            if reason.average is None:
                continue
            shown += 1
            position = numeric.index(reason.feature)
            assert reason.average == scorer.mean[position]
            assert reason.value is not None
            moved = (reason.value - reason.average) * np.sign(scorer.coef[position])
            assert moved * reason.contribution > 0
    assert shown > 0
    # Given by hand: the average only when the value's side of it agrees with the contribution.
    names = ("tract_pct_pre1940", "prior_elevated_share_block")
    layout = ReasonLayout.of(names, (0.45, 0.02), (1.0, 1.0))
    reasons = layout.reasons(names, names, (0.5, 0.0), [0.4, 0.2])
    assert [(r.feature, r.average) for r in reasons] == [
        ("tract_pct_pre1940", 0.45),
        ("prior_elevated_share_block", None),  # raises the risk below its average: not said
    ]


def test_without_real_area_history_every_feature_is_its_own_reason() -> None:
    names = ("age_days", "tract_pct_pre1940", "ca_pct_pre1940", "ca_median_income")
    layout = ReasonLayout.of(names)
    assert layout.home_area == () and layout.others == (0, 1, 2, 3)
    reasons = layout.reasons(names, names, (1.0, 2.0, 3.0, 4.0), [0.1, -0.4, 0.3, -0.2])
    assert [reason.feature for reason in reasons] == [
        "tract_pct_pre1940",
        "ca_pct_pre1940",
        "ca_median_income",
    ]
    # With the history among them, the area-level ones are one reason, valued by its recent level.
    with_history = (*names, "area_outcome_log_ratio_mean")
    layout = ReasonLayout.of(with_history)
    assert layout.home_area == (2, 3, 4) and layout.others == (0, 1)
    reasons = layout.reasons(
        with_history, with_history, (1.0, 2.0, 3.0, 4.0, -0.9), [0.1, -0.3, 0.3, -0.2, -0.5]
    )
    assert [(r.feature, r.value) for r in reasons] == [
        (HOME_AREA, -0.9),
        ("tract_pct_pre1940", 2.0),
        ("age_days", 1.0),
    ]
    assert reasons[0].contribution == pytest.approx(-0.4)


def test_homes_outside_the_city_or_unknown_are_refused(engine: LeadEngine) -> None:
    today = date.today()
    with pytest.raises(OutsideArea) as outside:
        engine.feature_vector(today, today, Home(latitude=41.5, longitude=-87.3))  # Indiana
    assert not outside.value.not_found
    with pytest.raises(OutsideArea) as unknown:
        engine.feature_vector(today, today, Home(address="99999 N Nowhere Blvd"))
    assert unknown.value.not_found


def test_known_homes_can_be_turned_off(
    engine: LeadEngine, model: LoadedModel, homes: pd.DataFrame, expected: pd.DataFrame
) -> None:
    """CIVICRISK_LEAD_KNOWN_HOMES=false (a city whose address table is too big to tabulate): an
    engine without the table, answering every home by the general path, with the same features."""
    from app_helpers import make_settings

    from app.main import create_app

    assert (
        create_app(make_settings(lead_known_homes=False), load_models=False).state.lead.known_homes is False
    )
    registry = ModelRegistry(MODELS_DIR)
    registry.reload()
    plain = LeadService(registry, DATA_DIR, None, known_homes=False).engine(model)
    assert plain is not engine and len(plain.known) == 0 and len(engine.known) > 50_000
    got = pd.DataFrame(
        [
            plain.feature_vector(
                row.birth_date.date(), row.as_of.date(), Home(latitude=row.latitude, longitude=row.longitude)
            )
            for row in homes.itertuples()
        ],
        columns=list(FEATURES),
    )
    pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-12)


def test_the_answer_knows_the_home_areas_latest_published_rate(
    service: LeadService, engine: LeadEngine, model: LoadedModel, lead_data: LeadData
) -> None:
    """The area's real rate the answer text quotes is the series' latest published year for the home's
    community area (today: the series' last year), and none before the series was published."""
    from app.hospitals.lead_answers import notes

    today, home = date.today(), Home(address="1600 W Division St")
    result = service.score(engine, model, today - timedelta(days=200), today, home)
    outcomes = lead_data.reference.area_outcomes
    assert outcomes is not None
    latitude, longitude = engine.coordinates(home)
    area = int(lead_data.reference.geo.locate_many([latitude], [longitude])["community_area"].iloc[0])
    last = outcomes.spec.years[1]
    assert result.area_rate == (last, pytest.approx(outcomes.series.rate.loc[area, last] * 100))
    clause = notes(result, elevated_lab=False, expected=False)[1]
    assert clause.startswith(("Raised mostly by", "Lowered mostly by"))
    early = service.score(engine, model, date(1996, 1, 1), date(1996, 6, 1), home)
    assert early.area_rate is None


def test_nearby_cells_count_and_place_as_the_tree_and_the_grid_do(engine: LeadEngine) -> None:
    """Homes off the table of known homes (address points moved up to 40 m in any direction, as an
    interpolated house number or a clinic's own coordinates are): the prepared cells give, for every
    date, exactly the tree's counts, on busy blocks and at repeat-test addresses alike, and the
    tract and community area the city-wide grid gives."""
    import math

    rng = np.random.default_rng(13)
    points = engine._addresses.points()
    chosen = [points[i] for i in rng.choice(len(points), 4000, replace=False)]
    offsets = rng.uniform(-0.00036, 0.00036, (len(chosen), 2))
    days = rng.integers(date(2005, 1, 1).toordinal(), date(2017, 6, 1).toordinal(), len(chosen))
    days[::4] = date(2026, 12, 6).toordinal()  # after every test: each cell's running counts
    prepared = busy = at_address = after_all = 0
    for (latitude, longitude), (north, east), ordinal in zip(chosen, offsets, days.tolist(), strict=True):
        latitude, longitude = latitude + float(north), longitude + float(east)
        lat, lon = math.radians(latitude), math.radians(longitude)
        radius = 6371.0088
        point = (radius * math.cos(lat) * math.cos(lon), radius * math.cos(lat) * math.sin(lon),
                 radius * math.sin(lat))  # fmt: skip
        day = ordinal - date(1970, 1, 1).toordinal()
        cell = engine.nearby.cell(latitude, longitude)
        if cell is None:
            continue
        counted = engine.nearby.counts(cell, point, day)
        assert counted == engine.tree_counts(point, day)
        placed = engine._locator.locate_in_box(engine._cell_places, cell, latitude, longitude)
        assert placed == engine._locator.locate(latitude, longitude)
        prepared += 1
        busy += counted[2] > 64
        at_address += counted[0] > 0
        after_all += engine.nearby._latest[cell] < day
    assert prepared > 500 and busy > 10 and at_address > 5, (prepared, busy, at_address)
    assert 200 < after_all < prepared - 200, after_all  # both ways of counting are exercised


def test_tree_counts_for_a_day_after_every_test_are_the_listed_ones(engine: LeadEngine) -> None:
    """The tree's counting queries (every test predating the day) give the counts the listed
    neighbours give, at address points moved up to ~120 m (inside and outside prepared cells)."""
    from app.hospitals.lead_risk import EPOCH

    rng = np.random.default_rng(17)
    points = engine._addresses.points()
    chosen = np.asarray([points[i] for i in rng.choice(len(points), 1500, replace=False)])
    moved = chosen + rng.uniform(-0.0011, 0.0011, chosen.shape)
    xyz = to_xyz(moved[:, 0], moved[:, 1])
    after = (date(2026, 12, 6) - EPOCH).days
    assert after > engine._test_days[-1]
    elevated = np.asarray(engine._test_elevated)
    busy = 0
    for point in xyz.tolist():
        near_block, near_address = engine._tree.query_ball_point(np.array((point, point)), engine._radii)
        listed = (
            len(near_address),
            int(elevated[near_address].sum()),
            len(near_block),
            int(elevated[near_block].sum()),
        )
        assert engine.tree_counts(tuple(point), after) == listed
        busy += listed[3] > 0
    assert busy > 300, busy
