"""The words a clinician reads: each reason's direction, fact and value as people write them."""

from __future__ import annotations

import pytest

from app.hospitals.lead_answers import plain_reason
from app.hospitals.lead_risk import Reason


@pytest.mark.parametrize(
    ("feature", "value", "contribution", "expected"),
    [
        ("share_built_before_1940", 0.4372, 0.8, "raises risk: share built before 1940 is 44%"),
        ("tract_pct_vacant", 0.05, -0.1, "lowers risk: share vacant is 5%"),
        ("median_income", 41234.6, -0.3, "lowers risk: share vacant is $41,235"),
        ("age_days", 300.0, 0.2, "raises risk: share vacant is 300 days"),
        ("prior_tests_block", 12.0, 0.4, "raises risk: share vacant is 12"),
        ("prior_elevated_share_block", None, 0.1, "raises risk: share vacant is not known"),
    ],
)
def test_reasons_in_plain_words(
    feature: str, value: float | None, contribution: float, expected: str
) -> None:
    description = (
        "share built before 1940 (ACS 2014, table B25034)" if "1940" in feature else "share vacant (CMAP)"
    )
    assert plain_reason(Reason(feature, value, contribution, description)) == expected
    assert plain_reason(Reason(feature, value, contribution, description)) == expected  # cached the same


def test_a_reason_names_the_training_average_when_it_has_one() -> None:
    description = "share built before 1940 (ACS 2014, table B25034)"
    reason = Reason("tract_pct_pre1940", 0.3, -0.2, description, average=0.449)
    assert plain_reason(reason) == "lowers risk: share built before 1940 is 30% (training average 45%)"
    index = Reason("tract_housing_risk_index", 34.2, -0.1, "housing index (WA DOH)", average=41.2)
    assert plain_reason(index) == (
        "lowers risk: share of the tract's homes estimated to have lead paint hazards (by their age) "
        "is 34% (training average 41%)"
    )
    unknown = Reason("tract_pct_pre1940", None, 0.1, description, average=0.449)
    assert plain_reason(unknown) == "raises risk: share built before 1940 is not known"


def _result(features: list[tuple[str, float]], area_rate: tuple[int, float] | None):  # noqa: ANN202
    from types import SimpleNamespace

    from app.hospitals.lead_risk import LeadResult

    reasons = [
        Reason(name, value, 0.5 - 0.1 * i, f"{name} (source)") for i, (name, value) in enumerate(features)
    ]
    model = SimpleNamespace(manifest={"synthetic": True})
    return LeadResult(0.1, "high", reasons, model, area_rate)  # type: ignore[arg-type]


def test_one_clause_says_what_drove_the_score_with_the_areas_real_rate() -> None:
    from app.hospitals.lead_answers import notes, risk_score_notes

    led_by_area = _result([("area_outcome_log_ratio_mean", 0.9), ("tract_pct_pre1940", 0.5)], (2016, 1.96))
    lines = notes(led_by_area, elevated_lab=False, expected=False)
    assert (
        lines[1]
        == "Raised mostly by the home area's real lead-poisoning rate: 2.0% of tested children in 2016"
    )
    assert lines[2] == (
        "raises risk: the home area's real lead-poisoning rate over recent published years is 2.5× the city's"
    )
    then_area = _result([("tract_pct_pre1940", 0.5), ("area_outcome_trend", -0.1)], (2016, 0.4))
    assert notes(then_area, elevated_lab=False, expected=False)[1] == (
        "Raised mostly by tract_pct_pre1940, with the home area's real lead-poisoning rate: 0.4% of tested "
        "children in 2016"
    )
    assert "-10% a year" in risk_score_notes(then_area, elevated_lab=False, expected=False)
    # No area feature among the reasons, or no published rate for the area: no rate is claimed.
    no_area = _result([("tract_pct_pre1940", 0.5)], (2016, 0.4))
    assert notes(no_area, elevated_lab=False, expected=False)[1] == "Raised mostly by tract_pct_pre1940"
    unknown = _result([("area_outcome_log_ratio", 0.2)], None)
    assert "%" not in notes(unknown, elevated_lab=False, expected=False)[1]


def test_the_home_area_is_one_reason_with_its_recent_real_rate() -> None:
    from app.hospitals.lead_answers import notes
    from app.hospitals.lead_risk import HOME_AREA, HOME_AREA_DESCRIPTION

    lowered = Reason(HOME_AREA, -0.9, -0.6, HOME_AREA_DESCRIPTION)
    assert plain_reason(lowered) == (
        "lowers risk: the home area's real lead-poisoning rate over recent published years (0.4× the "
        "city's) and census profile"
    )
    unknown = Reason(HOME_AREA, None, 0.2, HOME_AREA_DESCRIPTION)
    assert plain_reason(unknown) == "raises risk: the home area's real lead-poisoning rate and census profile"
    led = _result([(HOME_AREA, -0.9)], (2016, 0.3))
    assert notes(led, elevated_lab=False, expected=False)[1] == (
        "Raised mostly by the home area's real lead-poisoning rate: 0.3% of tested children in 2016"
    )


def test_the_housing_age_index_reads_as_the_share_of_homes_with_lead_paint_hazards() -> None:
    # 0.68 x 40% pre-1940 + 0.43 x 20% 1940-59 + ...: about 36% of the homes expected to have hazards.
    description = "Washington State DOH housing-age lead-risk index of the home's census tract (0.68 x ...)"
    reason = Reason("tract_housing_risk_index", 35.8, 0.3, description)
    assert plain_reason(reason) == (
        "raises risk: share of the tract's homes estimated to have lead paint hazards (by their age) is 36%"
    )
