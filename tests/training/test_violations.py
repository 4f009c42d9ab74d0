"""The portal's Violations text: codes, severity counts and the label."""

from __future__ import annotations

import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.ingest import CityData, parse_violation_codes, severity_counts

PORTAL_TEXT = (
    "11. ADEQUATE NUMBER, CONVENIENT, ACCESSIBLE, DESIGNED, AND MAINTAINED - Comments:  | "
    "21. * CERTIFIED FOOD MANAGER ON SITE WHEN POTENTIALLY HAZARDOUS FOODS ARE  PREPARED AND SERVED - "
    "Comments: NO CITY OF CHICAGO CERTIFIED FOOD MANAGER ON DUTY. 3. KEEP 41 DEGREES | "
    "34. FLOORS: CONSTRUCTED PER CODE, CLEANED, GOOD REPAIR - Comments: MUST CLEAN FLOORS | "
    "70. NO SMOKING REGULATIONS - Comments: "
)


def test_codes_come_from_the_leading_number_of_each_entry(chicago_config: CityConfig) -> None:
    codes = parse_violation_codes(PORTAL_TEXT, chicago_config.entry_separator, chicago_config.code_pattern)
    # "3. KEEP 41 DEGREES" inside a comment is not an entry: only numbers that start an entry count.
    assert codes == [11, 21, 34, 70]


def test_blank_and_missing_text_has_no_codes(chicago_config: CityConfig) -> None:
    for text in ("", "   ", None, float("nan")):
        assert parse_violation_codes(text, chicago_config.entry_separator, chicago_config.code_pattern) == []


def test_severity_counts(chicago_config: CityConfig) -> None:
    counts = severity_counts(
        pd.Series([PORTAL_TEXT, "", "1. X - Comments: | 2. Y - Comments: | 99. Z"]), chicago_config
    )
    assert counts.to_dict("records") == [
        {"n_critical": 1, "n_serious": 1, "n_minor": 2},
        {"n_critical": 0, "n_serious": 0, "n_minor": 0},
        {"n_critical": 2, "n_serious": 0, "n_minor": 0},
    ]


def test_sample_label_matches_the_data_readme(chicago_data: CityData) -> None:
    """The sample's README: 24,518 inspections, 3,330 with at least one critical violation."""
    inspections = chicago_data.inspections
    assert len(inspections) == 24_518
    assert int(inspections["label"].sum()) == 3_330
    assert set(inspections["result"]) == {"Pass", "Fail", "Pass w/ Conditions"}
