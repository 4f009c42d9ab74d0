"""The feature families, one line each, in the order their columns appear in the feature table.

Adding a family: a module declaring its `FeatureFamily` (builder, config keys, needs, data files,
reason texts), one line here, and its case in tests/training/test_leakage.py.
"""

from __future__ import annotations

from training.inspections.features.context import CALENDAR, WEATHER
from training.inspections.features.establishment import ESTABLISHMENT
from training.inspections.features.family import FeatureFamily
from training.inspections.features.history import HISTORY
from training.inspections.features.neighbourhood import AREA, ENVIRONMENT, NEIGHBOURHOOD
from training.inspections.features.score import SCORE

REGISTRY: tuple[FeatureFamily, ...] = (
    HISTORY,
    ESTABLISHMENT,
    NEIGHBOURHOOD,
    ENVIRONMENT,
    AREA,
    CALENDAR,
    WEATHER,
    SCORE,
)


def names() -> tuple[str, ...]:
    """Every registered family's name, in registry order."""
    return tuple(family.name for family in REGISTRY)


def family(name: str) -> FeatureFamily | None:
    """The registered family called `name`, if any."""
    return next((entry for entry in REGISTRY if entry.name == name), None)
