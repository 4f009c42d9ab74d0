"""What is known about the establishment itself: licence age, other licences, type and risk class."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key
from training.inspections.features.family import FeatureFamily, mapped_columns
from training.inspections.ingest import CityData

DAYS_PER_YEAR = 365.25
CATEGORICAL_FEATURES = ("facility_type", "risk_category")


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


_DERIVED_CACHE_SIZE = 8  # licence tables (cities x data versions) whose summaries are kept
_derived: dict[int, tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]] = {}
_derived_lock = threading.Lock()  # the daily lists of several dates may be ranked in threads


def _licence_summaries(licenses: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each establishment's earliest term start, and `_first_start_per_establishment(licenses, None)`.

    They depend on the licence table alone, which a service keeps for days, while a daily list asks
    for them per date: kept per table (the entry holds the table, so its id cannot be reused)."""
    with _derived_lock:
        entry = _derived.get(id(licenses))
    if entry is None or entry[0] is not licenses:
        own = licenses.groupby("establishment_id", as_index=False)["term_start"].min()
        entry = (licenses, own, _first_start_per_establishment(licenses, None))
        with _derived_lock:
            while len(_derived) >= _DERIVED_CACHE_SIZE:
                _derived.pop(next(iter(_derived)))
            _derived[id(licenses)] = entry
    return entry[1], entry[2]


def license_features(queries: pd.DataFrame, licenses: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Years since the earliest licence term start, and flags for other licences held before the date."""
    keyed = pd.DataFrame(
        {
            "_row": np.arange(len(queries)),
            "establishment_id": queries["establishment_id"].to_numpy(),
            "date": queries["date"].to_numpy(),
        }
    )
    own, held = _licence_summaries(licenses)
    # The earliest term start may lie after the query date; then the licence is not yet known.
    merged = keyed.merge(own, on="establishment_id", how="left")
    known = merged["term_start"] < merged["date"]
    years = np.where(known, (merged["date"] - merged["term_start"]).dt.days / DAYS_PER_YEAR, np.nan)
    result = pd.DataFrame({"years_licensed": years}, index=merged["_row"].to_numpy())

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


DESCRIPTIONS = {
    "facility_type": "facility type on the inspection record",
    "risk_category": "the city's risk category for the establishment",
    "years_licensed": "years since the establishment's earliest licence term started",
    "license_types_held": "number of licence types its business account held",
}

KEYS = (
    Key("licenses.file", "path", False, "no licences", "the licence CSV (establishment family)"),
    Key(
        "licenses.date_format",
        "string",
        False,
        "—",
        "strptime format of its dates (required with `licenses.file`)",
    ),
    Key(
        "licenses.columns.establishment_id",
        "string (column)",
        False,
        "—",
        "links a licence to `inspections.columns.establishment_id`",
    ),
    Key(
        "licenses.columns.account_id",
        "string (column)",
        False,
        "—",
        "the business account holding the licence",
    ),
    Key("licenses.columns.description", "string (column)", False, "—", "licence type"),
    Key("licenses.columns.term_start", "string (column)", False, "—", "licence term start date"),
    Key(
        "licenses.columns.term_end",
        "string (column)",
        False,
        "not used",
        "licence term end date (for `roster.require_active_license`)",
    ),
    Key(
        "licenses.other.*",
        "list of strings",
        False,
        "none",
        "a flag feature per name: the account held one of these licence types",
    ),
)


def _build(queries: pd.DataFrame, data: CityData, config: CityConfig) -> pd.DataFrame | None:
    parts = []
    described = [column for column in CATEGORICAL_FEATURES if column in config.columns]
    if described:
        parts.append(descriptive_features(queries)[described])
    if data.licenses is not None:
        parts.append(license_features(queries, data.licenses, config))
    if len(parts) > 1:
        return pd.concat(parts, axis=1)
    return parts[0] if parts else None


def _describe(name: str) -> str | None:
    if name in DESCRIPTIONS:
        return DESCRIPTIONS[name]
    if name.startswith("license_"):
        return f"1 if the business account held a {name.removeprefix('license_').replace('_', ' ')} licence"
    return None


def _needs(document: Mapping[str, Any]) -> str | None:
    columns = mapped_columns(document)
    if "licenses" in document or "facility_type" in columns or "risk_category" in columns:
        return None
    return "needs [licenses] or inspections.columns.facility_type / .risk_category"


def _files(config: CityConfig) -> Sequence[Path]:
    # Also read by the daily list (`roster.require_active_license`), so hashed whenever configured.
    return (config.licenses.source.path,) if config.licenses else ()


ESTABLISHMENT = FeatureFamily(
    name="establishment", build=_build, describe=_describe, keys=KEYS, needs=_needs, files=_files
)
