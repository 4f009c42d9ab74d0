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
