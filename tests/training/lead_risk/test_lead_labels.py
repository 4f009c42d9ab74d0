"""Labels from test records, and a city's own records (a CSV) in place of the synthetic generator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from training.lead.config import LeadConfig
from training.lead.outcomes import labelled_children, load_outcomes
from training.lead.reference import Reference

BIRTH = pd.Timestamp("2010-01-01")


def _tests(rows: list[tuple[str, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "child_id": [r[0] for r in rows],
            "birth_date": [BIRTH if r[0] != "late" else pd.Timestamp("2013-06-01") for r in rows],
            "test_date": [
                (BIRTH if r[0] != "late" else pd.Timestamp("2013-06-01")) + pd.Timedelta(days=r[1])
                for r in rows
            ],
            "result": [r[2] for r in rows],
            "latitude": 41.8,
            "longitude": -87.67,
            "tract": "17031610300",
            "community_area": 61,
            "audit_group": "x",
        }
    )


def test_label_is_an_elevated_test_after_the_as_of_date_and_before_age_3(lead_config: LeadConfig) -> None:
    config = replace(lead_config, score_age_days=(365, 365))  # as_of = birth + 365 days
    tests = _tests(
        [
            ("known", 200, 7.0),  # elevated before the as-of date: already identified, left out
            ("known", 500, 8.0),
            ("pos", 400, 6.0),
            ("neg", 400, 2.0),
            ("unobserved", 200, 2.0),  # no test after the as-of date: outcome unknown, left out
            ("too-late", 400, 1.0),
            ("too-late", 1100, 8.0),  # after the third birthday
            ("late", 100, 9.0),  # born too recently: window not closed by `until`
        ]
    )
    children = labelled_children(tests, config, pd.Timestamp("2014-12-31"))
    assert dict(zip(children["child_id"], children["label"], strict=True)) == {
        "neg": 0,
        "pos": 1,
        "too-late": 0,
    }
    assert (children["as_of"] == BIRTH + pd.Timedelta(days=365)).all()


def test_tests_after_until_are_invisible(lead_config: LeadConfig) -> None:
    config = replace(lead_config, score_age_days=(365, 365))
    tests = _tests([("pos", 400, 6.0)])
    assert labelled_children(tests, config, pd.Timestamp("2011-01-15")).empty  # window still open


def test_a_city_file_replaces_the_generator(
    lead_config: LeadConfig, reference: Reference, tmp_path: Path
) -> None:
    records = pd.DataFrame(
        [
            ("a", "2010-01-01", "2011-01-05", "6", "41.8", "-87.67", ""),
            ("b", "2010-01-01", "2011-01-05", "2", "", "", "4853 South Wood Street, Apt 2"),
            ("c", "2010-01-01", "2011-01-05", "2", "", "", "1 Nowhere Lane"),
            ("d", "2010-01-01", "2011-01-05", "2", "40.71", "-74.00", ""),
            ("e", "2010-02-30", "2011-01-05", "2", "41.8", "-87.67", ""),
            ("f", "2010-01-01", "2009-01-05", "2", "41.8", "-87.67", ""),
        ],
        columns=["child_id", "birth_date", "test_date", "result_ug_dl", "latitude", "longitude", "address"],
    )
    path = tmp_path / "tests.csv"
    records.to_csv(path, index=False)
    columns = {k: v for k, v in lead_config.outcome_columns.items() if k != "audit_group"}
    config = replace(lead_config, outcome_file=path, synthetic=None, outcome_columns=columns)
    outcomes = load_outcomes(config, reference)
    assert outcomes.source == "tests.csv"
    assert sorted(outcomes.tests["child_id"]) == ["a", "b"]
    resolved = outcomes.tests.set_index("child_id").loc["b"]
    assert resolved["community_area"] == 61 and abs(resolved["latitude"] - 41.8058) < 1e-3
    assert outcomes.dropped == {
        "missing or impossible date, result or id": 2,
        "address not found": 1,
        "outside service area": 1,
    }
    assert outcomes.tests["audit_group"].isna().all()  # this file has no audit column
