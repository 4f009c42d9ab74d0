"""Licence features worked out by hand on a small table: a licence type is known from the later of the
establishment's link to the account and the account's first term of that type, and only before the
query's date."""

from __future__ import annotations

import math

import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.features.establishment import license_features


def _licences(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["establishment_id", "account_id", "description", "term_start"])
    frame = frame.astype({"establishment_id": "string", "account_id": "string", "description": "string"})
    frame["term_start"] = pd.to_datetime(frame["term_start"]).astype("datetime64[us]")
    frame["term_end"] = frame["term_start"] + pd.Timedelta(days=730)
    return frame


QUERIES = pd.DataFrame(
    {
        "establishment_id": pd.array(["A", "A", "B", "C", "D", None], dtype="string"),
        "date": pd.to_datetime(
            ["2012-01-01", "2013-01-01", "2012-07-01", "2014-01-01", "2014-01-01", "2014-01-01"]
        ),
    },
    index=[10, 11, 12, 13, 14, 15],
)


def test_known_types_years_and_flags(chicago_config: CityConfig) -> None:
    licences = _licences(
        [
            ("A", "1", "Retail Food Establishment", "2010-01-01"),
            ("A", "1", "Tobacco", "2012-06-01"),
            ("B", "1", "Retail Food Establishment", "2011-01-01"),  # B shares A's account from 2011
            ("C", "2", "Retail Food Establishment", "2015-01-01"),  # starts after C's query
        ]
    )
    result = license_features(QUERIES, licences, chicago_config)
    assert list(result.index) == list(QUERIES.index)
    years = result["years_licensed"].tolist()
    assert years[:3] == [730 / 365.25, 1096 / 365.25, 547 / 365.25]
    assert all(math.isnan(value) for value in years[3:])  # not yet licensed; unknown; no id
    # A in 2012: food only; A in 2013 and B in mid-2012: food and tobacco (through the account).
    assert result["license_types_held"].tolist() == [1.0, 2.0, 2.0, 0.0, 0.0, 0.0]
    assert result["license_tobacco"].tolist() == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert result["license_package_goods"].tolist() == [0.0] * 6
    assert set(result.dtypes) == {pd.api.types.pandas_dtype("float64")}


def test_an_empty_licence_table_knows_nothing(chicago_config: CityConfig) -> None:
    result = license_features(QUERIES, _licences([]), chicago_config)
    assert result["years_licensed"].isna().all()
    assert (result.drop(columns="years_licensed") == 0.0).all().all()

