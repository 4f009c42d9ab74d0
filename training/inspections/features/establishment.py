"""What is known about the establishment itself: licence age, other licences, type and risk class."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig

DAYS_PER_YEAR = 365.25


def _first_start_per_establishment(
    licenses: pd.DataFrame, descriptions: tuple[str, ...] | None
) -> pd.DataFrame:
    """Earliest date from which an establishment is known to hold (through its account) a licence type.

    An establishment is linked to an account from the start of its own first licence term on that
    account, so a later record cannot reveal an earlier link.
    """
    links = licenses.groupby(["establishment_id", "account_id"], as_index=False)["term_start"].min()
    held = licenses if descriptions is None else licenses[licenses["description"].isin(descriptions)]
    held = held.groupby(["account_id", "description"], as_index=False)["term_start"].min()
    pairs = links.merge(held, on="account_id", suffixes=("_link", "_held"))
    pairs["known_from"] = pairs[["term_start_link", "term_start_held"]].max(axis=1)
    return pairs.groupby(["establishment_id", "description"], as_index=False)["known_from"].min()


def license_features(queries: pd.DataFrame, licenses: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Years since the earliest licence term start, and flags for other licences held before the date."""
    keyed = pd.DataFrame(
        {
            "_row": np.arange(len(queries)),
            "establishment_id": queries["establishment_id"].to_numpy(),
            "date": queries["date"].to_numpy(),
        }
    )
    own = licenses.groupby("establishment_id", as_index=False)["term_start"].min()
    # The earliest term start may lie after the query date; then the licence is not yet known.
    merged = keyed.merge(own, on="establishment_id", how="left")
    known = merged["term_start"] < merged["date"]
    years = np.where(known, (merged["date"] - merged["term_start"]).dt.days / DAYS_PER_YEAR, np.nan)
    result = pd.DataFrame({"years_licensed": years}, index=merged["_row"].to_numpy())

    held = _first_start_per_establishment(licenses, None)
    rows = keyed.merge(held, on="establishment_id", how="inner")
    rows = rows[rows["known_from"] < rows["date"]]
    result["license_types_held"] = rows.groupby("_row")["description"].nunique()
    result["license_types_held"] = result["license_types_held"].fillna(0.0)
    assert config.licenses is not None
    for flag, descriptions in config.licenses.other.items():
        flagged = rows[rows["description"].isin(descriptions)]
        result[f"license_{flag}"] = result.index.isin(flagged["_row"].unique()).astype("float64")
    result.index = queries.index[result.index]
    return result


def descriptive_features(queries: pd.DataFrame) -> pd.DataFrame:
    """Facility type and risk category as the inspection record states them (categorical)."""
    return pd.DataFrame(
        {
            "facility_type": queries["facility_type"].astype("string").fillna("Unknown").astype(object),
            "risk_category": queries["risk_category"].astype("string").fillna("Unknown").astype(object),
        },
        index=queries.index,
    )
