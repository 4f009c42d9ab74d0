"""Place features from public reference tables: housing age by tract, demographics by community area."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from training.address import AddressIndex, load_address_index
from training.config import ConfigError
from training.geo import GeoIndex, load_geo_index
from training.lead.area_outcomes import AreaOutcomes, load_area_outcomes
from training.lead.config import LeadConfig

# ACS table B25034 (year structure built), as columns of the tract file; these are the Census
# Bureau's categories, the same for every US city.
HOUSING_AGE_BANDS = {
    "pre1940": ("built_1939_earlier",),
    "1940_1959": ("built_1940_1949", "built_1950_1959"),
    "1960_1979": ("built_1960_1969", "built_1970_1979"),
    "1980_1999": ("built_1980_1989", "built_1990_1999"),
}
TRACT_ID_COLUMN = "geoid"
TRACT_UNITS_COLUMN = "hu_total"
# Washington State Department of Health housing-age lead-risk weights (share of units, as a percentage).
WA_DOH_WEIGHTS = {"pre1940": 0.68, "1940_1959": 0.43, "1960_1979": 0.08, "1980_1999": 0.03}

TRACT_FEATURES = (
    "tract_housing_risk_index",
    "tract_pct_pre1940",
    "tract_pct_1940_1959",
    "tract_pct_1960_1979",
    "tract_pct_1980_1999",
    "tract_housing_units",
)
AREA_FEATURES = (
    "ca_median_income",
    "ca_low_income_share",
    "ca_renter_share",
    "ca_vacancy_share",
    "ca_pct_pre1940",
    "ca_no_high_school_share",
)


def housing_age_features(table: pd.DataFrame) -> pd.DataFrame:
    """Shares of housing units by construction period and the WA DOH index, indexed by tract id.

    Tracts without housing units get missing shares (a share of nothing is undefined, not zero).
    """
    units = table[TRACT_UNITS_COLUMN].astype("float64").where(lambda u: u > 0)
    out = pd.DataFrame(index=table[TRACT_ID_COLUMN].astype("string"))
    index = np.zeros(len(table))
    for band, columns in HOUSING_AGE_BANDS.items():
        share = (table[list(columns)].sum(axis=1) / units).to_numpy()
        out[f"tract_pct_{band}"] = share
        index = index + WA_DOH_WEIGHTS[band] * share
    out["tract_housing_risk_index"] = 100 * index
    out["tract_housing_units"] = table[TRACT_UNITS_COLUMN].to_numpy(dtype="float64")
    return out[list(TRACT_FEATURES)]


def community_features(profiles: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """Income, low-income share (households under $25k: the poverty measure available per area),
    tenure, vacancy, pre-1940 housing and education, indexed by community-area number."""

    def share(numerator: str, denominator: str) -> np.ndarray:
        bottom = profiles[columns[denominator]].astype("float64").where(lambda v: v > 0)
        return np.asarray(profiles[columns[numerator]].astype("float64") / bottom, dtype="float64")

    occupied = profiles[columns["owner_occupied"]] + profiles[columns["renter_occupied"]]
    out = pd.DataFrame(index=pd.Index(profiles[columns["id"]].astype("int64"), name="community_area"))
    out["ca_median_income"] = profiles[columns["median_income"]].to_numpy(dtype="float64")
    out["ca_low_income_share"] = share("low_income_households", "households")
    out["ca_renter_share"] = (profiles[columns["renter_occupied"]] / occupied.where(occupied > 0)).to_numpy()
    out["ca_vacancy_share"] = share("vacant", "housing_units")
    out["ca_pct_pre1940"] = share("built_before_1940", "housing_units")
    out["ca_no_high_school_share"] = share("no_high_school", "adults_25_over")
    return out[list(AREA_FEATURES)]


@dataclass(frozen=True)
class Reference:
    """Everything place-based a lead model reads: boundaries, addresses, tract and area features."""

    config: LeadConfig
    geo: GeoIndex
    tracts: pd.DataFrame  # TRACT_FEATURES by tract id
    areas: pd.DataFrame  # AREA_FEATURES by community-area number
    profiles: pd.DataFrame  # the raw community profiles, indexed by community-area number
    area_outcomes: AreaOutcomes | None = None  # real rates by area and year, when configured

    def addresses(self) -> AddressIndex:
        # Built on first use: training on coordinates alone never pays for it.
        return load_address_index(self.config.addresses)

    def place_features(self, tract: pd.Series, community_area: pd.Series) -> pd.DataFrame:
        """Tract and community-area features for each row (missing where the place is unknown)."""
        by_tract = self.tracts.reindex(tract.astype("string").to_numpy())
        by_area = self.areas.reindex(community_area.astype("float64").to_numpy())
        return pd.concat(
            [by_tract.set_axis(tract.index), by_area.set_axis(community_area.index)], axis=1
        ).astype("float64")


def load_reference(config: LeadConfig) -> Reference:
    """Read the reference files a lead config names (boundaries and addresses are cached per file)."""
    geo = load_geo_index(
        config.tracts,
        config.community_areas,
        config.tract_id,
        config.tract_community_area,
        config.community_area_id,
    )
    housing = pd.read_csv(config.housing_age, dtype={TRACT_ID_COLUMN: "string"})
    missing = [c for bands in HOUSING_AGE_BANDS.values() for c in bands if c not in housing.columns]
    if TRACT_UNITS_COLUMN not in housing.columns or TRACT_ID_COLUMN not in housing.columns or missing:
        raise ConfigError(
            config.path, "reference.housing_age", "not an ACS B25034 table (geoid, hu_total, built_*)"
        )
    profiles = pd.read_csv(config.community_profiles)
    absent = sorted(set(config.community_columns.values()) - set(profiles.columns))
    if absent:
        raise ConfigError(config.path, "reference.community_columns", f"column {absent[0]!r} not in the file")
    areas = community_features(profiles, config.community_columns)
    area_outcomes = None
    if config.area_outcomes is not None:
        level = config.area_outcomes.area_level
        ids = geo.area_ids if level == "community_area" else geo.tract_ids
        # A series by community area is smoothed towards what each area's profile predicts; one by
        # tract towards the city's rate (the tract table has housing age only).
        covariates = areas if level == "community_area" else None
        area_outcomes = load_area_outcomes(config.area_outcomes, config.path, ids.tolist(), covariates)
    return Reference(
        area_outcomes=area_outcomes,
        config=config,
        geo=geo,
        tracts=housing_age_features(housing),
        areas=areas,
        profiles=profiles.set_index(profiles[config.community_columns["id"]].astype("int64")),
    )
