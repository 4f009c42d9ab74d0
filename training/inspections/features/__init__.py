"""Point-in-time features: every function sees only rows dated strictly before each query's date."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pandas as pd

from training.inspections.features.context import calendar_features, weather_features
from training.inspections.features.establishment import descriptive_features, license_features
from training.inspections.features.history import history_features
from training.inspections.features.neighbourhood import (
    area_outcome_features,
    event_density_features,
    nearby_outcome_features,
)
from training.inspections.ingest import CityData

QUERY_COLUMNS = ("establishment_id", "date", "latitude", "longitude", "facility_type", "risk_category")
REQUIRED_QUERY_COLUMNS = ("establishment_id", "date")
LOCATED_FAMILIES = ("neighbourhood", "environment")
CATEGORICAL_FEATURES = ("facility_type", "risk_category")


def build_features(queries: pd.DataFrame, data: CityData) -> pd.DataFrame:
    """Features for each (establishment, date) query, computed from `data` as known before that date.

    Only the families the city config lists are built. `queries` needs `establishment_id` and a valid
    `date` (plus `latitude`/`longitude` for the located families); other query fields it lacks count
    as unknown. The result has one row per query, same index; categorical columns hold strings, every
    other column is float.
    """
    config = data.config
    families = set(config.families)
    required = list(REQUIRED_QUERY_COLUMNS)
    if families & set(LOCATED_FAMILIES):
        required += ["latitude", "longitude"]
    missing = [column for column in required if column not in queries.columns]
    if missing:
        raise ValueError(f"queries lack columns {missing}")
    absent = {column: pd.NA for column in (*QUERY_COLUMNS, "zip") if column not in queries.columns}
    queries = queries.assign(**absent) if absent else queries

    parts = []
    if "history" in families:
        parts.append(history_features(queries, data.inspections, with_results="result" in config.columns))
    if "establishment" in families:
        described = [column for column in CATEGORICAL_FEATURES if column in config.columns]
        if described:
            parts.append(descriptive_features(queries)[described])
        if data.licenses is not None:
            parts.append(license_features(queries, data.licenses, config))
    if "neighbourhood" in families:
        parts.append(
            nearby_outcome_features(
                queries,
                data.inspections,
                config.neighbourhood_radii_km,
                config.neighbourhood_windows_days,
                config.neighbourhood_nearest,
            )
        )
    if "environment" in families:
        parts.append(event_density_features(queries, data.events))
    if "area" in families and config.area_field is not None:
        parts.append(
            area_outcome_features(queries, data.inspections, config.area_field, config.area_windows_days)
        )
    if "calendar" in families:
        parts.append(calendar_features(queries))
    if "weather" in families and data.weather is not None and config.weather is not None:
        parts.append(weather_features(queries, data.weather, config.weather.window_days))
    if not parts:
        raise ValueError("the city config builds no feature family")
    return pd.concat(parts, axis=1)


FEATURE_DESCRIPTIONS = {
    "prior_inspections": "number of earlier inspections of this establishment",
    "first_inspection": "1 if this is the establishment's first inspection on record",
    "days_since_last": "days since the establishment's previous inspection",
    "prev_critical": "critical violations found at the previous inspection",
    "prev_serious": "serious violations found at the previous inspection",
    "prev_minor": "minor violations found at the previous inspection",
    "prev_failed": "1 if the previous inspection failed",
    "past_fails": "number of earlier failed inspections",
    "past_critical_inspections": "number of earlier inspections with a critical violation",
    "critical_decayed": "earlier critical-violation inspections, weighted by recency (1-year decay)",
    "fails_decayed": "earlier failed inspections, weighted by recency (1-year decay)",
    "violations_decayed": "earlier violations of any class, weighted by recency (1-year decay)",
    "facility_type": "facility type on the inspection record",
    "risk_category": "the city's risk category for the establishment",
    "month": "month of the inspection date",
    "day_of_week": "day of the week (0 = Monday)",
    "years_licensed": "years since the establishment's earliest licence term started",
    "license_types_held": "number of licence types its business account held",
}


_CLASS_WORDS = re.compile(r"\b(critical|serious|minor)\b")


def describe_feature(name: str, severity_names: Mapping[str, str] | None = None) -> str:
    """A sentence a person can read for a feature column, naming violation classes in the city's
    own words where its config gives them (`[violations.names]`)."""
    text = _describe(name)
    if not severity_names:
        return text
    return _CLASS_WORDS.sub(lambda found: severity_names.get(found[1], found[1]), text)


def _describe(name: str) -> str:
    if name in FEATURE_DESCRIPTIONS:
        return FEATURE_DESCRIPTIONS[name]
    if name.startswith("license_"):
        return f"1 if the business account held a {name.removeprefix('license_').replace('_', ' ')} licence"
    if name.startswith("nearby_critical_share_"):
        window, radius = name.removeprefix("nearby_critical_share_").split("_")
        return f"share of inspections within {radius} in the last {window} that found a critical violation"
    if name.startswith("nearby_inspections_"):
        window, radius = name.removeprefix("nearby_inspections_").split("_")
        return f"number of inspections within {radius} in the last {window}"
    if name.startswith("nearest"):
        k, window, measure = name.removeprefix("nearest").split("_", 2)
        what = {
            "critical_share": "share that found a critical violation",
            "fail_share": "share that failed",
            "mean_violations": "mean number of violations",
            "mean_km": "mean distance in km",
        }.get(measure, measure)
        return f"{what}, of the {k} nearest inspections in the last {window}"
    if name.startswith("area_critical_share_"):
        window = name.rsplit("_", 1)[1]
        return f"share of inspections in the same area in the last {window} with a critical violation"
    if name.startswith("area_inspections_"):
        return f"number of inspections in the same area in the last {name.rsplit('_', 1)[1]}"
    if "_per_km2_" in name:
        source, rest = name.split("_per_km2_")
        window, radius = rest.split("_")
        return f"{source.replace('_', ' ')} per km² within {radius} in the last {window}"
    if name.startswith("temperature_max_mean_"):
        return f"mean daily maximum temperature over the {name.rsplit('_', 1)[1]} before"
    return name.replace("_", " ")
