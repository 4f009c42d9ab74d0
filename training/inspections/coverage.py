"""Words and checks that keep a city's features honest about its own data.

Refuse, in one line per family, a feature family that carries nothing for any example: a model
trained on it learns nothing from it, and numpy deep inside a learner fails with a message that names
neither the family nor the config key that emptied it."""

from __future__ import annotations

import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.features import registry

HINTS = {
    "history": "no establishment has two inspections — check the inspection key "
    "(inspections.key, or inspections.columns.inspection_id and establishment_id)",
    "score": "no establishment has an earlier scored inspection — check inspections.columns.score",
    "establishment": "no establishment has a type, risk class or licence on record — check its columns",
    "neighbourhood": "no inspection has nearby earlier inspections — check latitude and longitude",
    "environment": "no event falls near an inspection before its date — check the [[environment]] files",
    "area": "no area has earlier inspections — check neighbourhood.area_field",
    "weather": "no weather is recorded before any inspection date — check the [weather] file's dates",
}


def _carries_nothing(column: pd.Series) -> bool:
    """All missing, or one value for every row."""
    return bool(column.dropna().nunique() <= 1)


def empty_families(features: pd.DataFrame, config: CityConfig) -> list[str]:
    """One line per configured family whose every column is missing or constant across `features`."""
    lines = []
    for family in registry.REGISTRY:
        if family.name not in config.families:
            continue
        columns = [column for column in features.columns if family.describe(column) is not None]
        if columns and all(_carries_nothing(features[column]) for column in columns):
            hint = HINTS.get(family.name, "its inputs are empty for every inspection")
            lines.append(f"features: {family.name}: {hint} (or remove it from features.families)")
    return lines


def label_feature_words(config: CityConfig) -> dict[str, str]:
    """Descriptions of the history columns that count earlier *labelled* inspections, for a city whose
    label is a score or a grade: theirs are not "critical violations" (the severity label's words)."""
    if config.label_score_at_least is None and not config.label_grades:
        return {}
    outcome = config.label_description or config.label_name.replace("_", " ")
    return {
        "past_critical_inspections": f"number of earlier inspections where {outcome}",
        "critical_decayed": f"earlier inspections where {outcome}, weighted by recency (1-year decay)",
    }
