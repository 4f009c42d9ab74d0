"""Temporal validation: rolling origins, each training on the past and validating on what followed."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Origin:
    """Train on rows dated before `valid_start`; validate on rows in [valid_start, valid_end]."""

    valid_start: pd.Timestamp
    valid_end: pd.Timestamp

    def as_dict(self) -> dict[str, str]:
        return {
            "valid_start": self.valid_start.date().isoformat(),
            "valid_end": self.valid_end.date().isoformat(),
        }


def rolling_origins(until: pd.Timestamp, count: int = 3, months: int = 2) -> list[Origin]:
    """`count` consecutive validation windows of `months` months, the last one ending on `until`.

    Oldest first. Windows do not overlap, and each model is trained only on rows before its window.
    """
    origins = []
    end = pd.Timestamp(until).normalize()
    for _ in range(count):
        start = (end + pd.Timedelta(days=1)) - pd.DateOffset(months=months)
        origins.append(Origin(valid_start=pd.Timestamp(start), valid_end=end))
        end = pd.Timestamp(start) - pd.Timedelta(days=1)
    return origins[::-1]


def split_masks(dates: pd.Series, origin: Origin) -> tuple[pd.Series, pd.Series]:
    """Boolean masks (train, validate) for one origin."""
    train = dates < origin.valid_start
    validate = (dates >= origin.valid_start) & (dates <= origin.valid_end)
    return train, validate
