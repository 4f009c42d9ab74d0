"""What is known about the establishment itself: licence age, other licences, type and risk class."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.inspections.config import CityConfig
from training.inspections.config_schema import Key
from training.inspections.features.family import FeatureFamily, mapped_columns
from training.inspections.frame_memo import remembered
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


@dataclass(frozen=True)
class LicenceIndex:
    """A licence table's summaries as arrays by establishment code, for queries by the thousand.

    `own_start[c]`: establishment c's earliest term start (NaT: none). `held_*`: the rows of
    `_first_start_per_establishment(licenses, None)` (one per establishment and licence type) sorted
    by establishment code, those of code c at `held_bounds[c]:held_bounds[c + 1]`. The last code,
    `unlicensed`, stands for every establishment the table does not name: no start, no rows."""

    codes: dict[str, int]
    unlicensed: int
    own_start: np.ndarray  # datetime64, per code
    held_bounds: np.ndarray  # int64, one more than codes
    held_from: np.ndarray  # datetime64: known_from
    held_description: np.ndarray  # object (str)

    @classmethod
    def of(cls, own: pd.DataFrame, held: pd.DataFrame) -> LicenceIndex:
        names = pd.unique(
            np.concatenate(
                [own["establishment_id"].to_numpy(object), held["establishment_id"].to_numpy(object)]
            )
        )
        codes = {str(name): code for code, name in enumerate(names)}
        unlicensed = len(names)
        own_start = np.full(unlicensed + 1, np.datetime64("NaT"), dtype=own["term_start"].to_numpy().dtype)
        own_start[[codes[str(name)] for name in own["establishment_id"].tolist()]] = own[
            "term_start"
        ].to_numpy()
        held_codes = np.array(
            [codes[str(name)] for name in held["establishment_id"].tolist()], dtype=np.int64
        )
        order = np.argsort(held_codes, kind="stable")
        return cls(
            codes=codes,
            unlicensed=unlicensed,
            own_start=own_start,
            held_bounds=np.searchsorted(held_codes[order], np.arange(unlicensed + 2), side="left"),
            held_from=held["known_from"].to_numpy()[order],
            held_description=held["description"].to_numpy(object)[order],
        )


def _licence_index(licenses: pd.DataFrame) -> LicenceIndex:
    """Each establishment's earliest term start and `_first_start_per_establishment(licenses, None)`,
    as a LicenceIndex. They depend on the licence table alone, which a service keeps for days, while
    a daily list asks for them per date: made once per table (frame_memo)."""

    def make() -> LicenceIndex:
        own = licenses.groupby("establishment_id", as_index=False)["term_start"].min()
        return LicenceIndex.of(own, _first_start_per_establishment(licenses, None))

    return remembered(licenses, "licence index", make)


def license_features(queries: pd.DataFrame, licenses: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Years since the earliest licence term start, and flags for other licences held before the date."""
    index = _licence_index(licenses)
    unlicensed = index.unlicensed
    codes = np.array(
        [
            index.codes.get(name, unlicensed) if isinstance(name, str) else unlicensed
            for name in queries["establishment_id"].tolist()
        ],
        dtype=np.int64,
    )
    dates = queries["date"].to_numpy(dtype="datetime64[ns]")
    # The earliest term start may lie after the query date; then the licence is not yet known.
    start = index.own_start[codes]
    before = start < dates  # NaT on either side: not known
    with np.errstate(invalid="ignore"):  # NaT's days: not used (not `before`)
        days = (dates - start) // np.timedelta64(1, "D")
    years = np.where(before, days / DAYS_PER_YEAR, np.nan)
    result = pd.DataFrame({"years_licensed": years.astype("float64")}, index=queries.index)

    # Every (query, licence type its establishment's accounts held) pair, the type known before the date.
    first = index.held_bounds[codes]
    counts = index.held_bounds[codes + 1] - first
    query_of = np.repeat(np.arange(len(codes)), counts)
    held = np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
    kept = index.held_from[held] < dates[query_of]
    query_of, held = query_of[kept], held[kept]
    # One row per establishment and licence type: the kept pairs of a query are its distinct types.
    result["license_types_held"] = np.bincount(query_of, minlength=len(codes)).astype("float64")
    assert config.licenses is not None
    for flag, descriptions in config.licenses.other.items():
        flagged = np.isin(index.held_description[held], list(descriptions))
        result[f"license_{flag}"] = (np.bincount(query_of[flagged], minlength=len(codes)) > 0).astype(
            "float64"
        )
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
