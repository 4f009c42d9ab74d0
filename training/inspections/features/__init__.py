"""Point-in-time features: every function sees only rows dated strictly before each query's date."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from training.inspections.features import registry
from training.inspections.features.establishment import CATEGORICAL_FEATURES
from training.inspections.ingest import CityData

__all__ = [
    "CATEGORICAL_FEATURES",
    "QUERY_COLUMNS",
    "anchored_queries",
    "build_features",
    "describe_feature",
    "feature_family",
]

QUERY_COLUMNS = ("establishment_id", "date", "latitude", "longitude", "facility_type", "risk_category")
REQUIRED_QUERY_COLUMNS = ("establishment_id", "date")


def build_features(queries: pd.DataFrame, data: CityData) -> pd.DataFrame:
    """Features for each (establishment, date) query, computed from `data` as known before that date.

    Only the families the city config lists are built, in registry order. `queries` needs
    `establishment_id` and a valid `date` (plus `latitude`/`longitude` for the located families);
    other query fields it lacks count as unknown. The result has one row per query, same index;
    categorical columns hold strings, every other column is float.
    """
    config = data.config
    families = [family for family in registry.REGISTRY if family.name in config.families]
    required = list(REQUIRED_QUERY_COLUMNS)
    for family in families:
        required += [column for column in family.query_columns if column not in required]
    missing = [column for column in required if column not in queries.columns]
    if missing:
        raise ValueError(f"queries lack columns {missing}")
    absent = {column: pd.NA for column in (*QUERY_COLUMNS, "zip") if column not in queries.columns}
    queries = queries.assign(**absent) if absent else queries

    anchored = anchored_queries(queries, data) if any(family.anchored for family in families) else queries
    parts = [
        part
        for family in families
        if (part := family.build(anchored if family.anchored else queries, data, config)) is not None
    ]
    if not parts:
        raise ValueError("the city config builds no feature family")
    return pd.concat(parts, axis=1)


def anchored_queries(queries: pd.DataFrame, data: CityData) -> pd.DataFrame:
    """`queries` with each date moved back to the day after the newest outcome `data` holds, where
    that is earlier: the date an anchored family's windows end (see `FeatureFamily.anchored`)."""
    # Numpy, not pandas: a daily list pays this on every ranking (well under a millisecond).
    dates = data.inspections["date"].to_numpy()[data.inspections["has_outcome"].to_numpy(dtype=bool)]
    if len(dates) == 0:
        return queries
    held_until = pd.Timestamp(dates.max()).normalize() + pd.Timedelta(days=1)
    if not (queries["date"] > held_until).any():  # fresh data: the same frame, nothing copied
        return queries
    return queries.assign(date=queries["date"].where(queries["date"] <= held_until, held_until))


_CLASS_WORDS = re.compile(r"\b(critical|serious|minor)\b")


def describe_feature(name: str, severity_names: Mapping[str, str] | None = None) -> str:
    """A sentence a person can read for a feature column, naming violation classes in the city's
    own words where its config gives them (`[violations.names]`)."""
    text = _describe(name)
    if not severity_names:
        return text
    return _CLASS_WORDS.sub(lambda found: severity_names.get(found[1], found[1]), text)


def feature_family(name: str) -> str | None:
    """The registered family a feature column belongs to (the one that describes it), or None."""
    for family in registry.REGISTRY:
        if family.describe(name) is not None:
            return family.name
    return None


def _describe(name: str) -> str:
    for family in registry.REGISTRY:
        text = family.describe(name)
        if text is not None:
            return text
    return name.replace("_", " ")
