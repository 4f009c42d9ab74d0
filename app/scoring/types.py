"""The values scoring passes between its stages: a bundle's input layout, validated records (as
arrays for a batch, as Python values for a few), and scores with their per-feature contributions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# training/inspections/features/establishment.py fills a blank facility type or risk category with
# this value.
MISSING_CATEGORY = "Unknown"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class FeatureLayout:
    """A bundle's input schema split by type, in the estimator's column order."""

    names: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    known: frozenset[str] = field(init=False)
    # Per feature in `names` order: its column among the numeric ones (0 for a category), and for
    # categories their index in `categorical`. Derived, so left out of equality and hashing.
    numeric_column: tuple[int, ...] = field(init=False, compare=False)
    category_of: dict[int, int] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        numeric = {name: j for j, name in enumerate(self.numeric)}
        categorical = {name: k for k, name in enumerate(self.categorical)}
        object.__setattr__(self, "known", frozenset(self.names))
        object.__setattr__(self, "numeric_column", tuple(numeric.get(name, 0) for name in self.names))
        object.__setattr__(
            self,
            "category_of",
            {i: categorical[name] for i, name in enumerate(self.names) if name in categorical},
        )

    @classmethod
    def from_schema(cls, schema: Sequence[dict[str, Any]]) -> FeatureLayout:
        names = tuple(str(entry["name"]) for entry in schema)
        categorical = tuple(str(e["name"]) for e in schema if e.get("type") == "category")
        numeric = tuple(name for name in names if name not in set(categorical))
        return cls(names=names, numeric=numeric, categorical=categorical)


@dataclass(frozen=True)
class RecordBatch:
    """Validated records: numbers as an (n, numeric) float matrix, categories as one list per column."""

    numeric: FloatArray
    categorical: tuple[list[str], ...]

    def __len__(self) -> int:
        return int(self.numeric.shape[0])


@dataclass(frozen=True, slots=True)
class RecordRows:
    """A few validated records as plain Python values (missing numbers are None), for requests so
    small that numpy's per-call overhead would cost more than the arithmetic."""

    numeric: list[tuple[float | None, ...]]
    categorical: tuple[list[str], ...]

    def __len__(self) -> int:
        return len(self.numeric)


@dataclass(frozen=True, slots=True)
class ScoredRows:
    """`Scored` as Python lists, from `CompiledLinear.score_rows`."""

    scores: list[float]
    contributions: list[list[float]]
    baseline: float


@dataclass(frozen=True)
class Scored:
    """Scores and per-feature contributions (logit units, columns in the layout's name order)."""

    scores: FloatArray
    contributions: FloatArray
    baseline: float  # the logit when every contribution is zero (the intercept for linear models)
