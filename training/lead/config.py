"""Lead-risk city configuration: reference files, the outcome source, label, features, audit, scoring."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from training.config import ConfigError, ConfigReader, city_timezone
from training.lead.area_outcomes import AREA_LEVELS, RATE_UNITS, AreaOutcomesSpec

OUTCOME_FIELDS = ("child_id", "birth_date", "test_date", "result")
LOCATION_FIELDS = ("latitude", "longitude", "address")
SCORING_FIELDS = ("id", "date_of_birth")
COMMUNITY_FIELDS = (
    "id",
    "median_income",
    "households",
    "low_income_households",
    "owner_occupied",
    "renter_occupied",
    "vacant",
    "housing_units",
    "built_before_1940",
    "adults_25_over",
    "no_high_school",
)


@dataclass(frozen=True)
class SyntheticSpec:
    """The documented generator standing in for private blood-test records (training/lead/cohort.py)."""

    seed: int
    birth_years: tuple[int, int]
    children_per_year: int
    base_rate: float
    effects: dict[str, float]  # log-odds per standard deviation, by driver
    address_effect_sd: float
    address_only_share: float
    group_columns: dict[str, str]  # audit group label -> community-profile population column


@dataclass(frozen=True)
class LeadConfig:
    path: Path
    text: str
    city: str
    display_name: str
    model_name: str
    tracts: Path
    tract_id: str
    tract_community_area: str
    community_areas: Path
    community_area_id: str
    housing_age: Path
    community_profiles: Path
    community_columns: dict[str, str]
    addresses: Path
    label_name: str
    label_description: str
    threshold: float
    horizon_days: int
    outcome_file: Path | None  # None: the synthetic generator supplies the outcomes
    outcome_date_format: str
    outcome_columns: dict[str, str]
    synthetic: SyntheticSpec | None
    score_age_days: tuple[int, int]
    examples_seed: int
    block_radius_m: float
    validation_cohorts: int
    audit_top_share: float
    audit_tau: float
    scoring_columns: dict[str, str]
    scoring_date_format: str
    area_outcomes: AreaOutcomesSpec | None = None  # real rates by area and year, when the city has them
    # The city's lead programme page (label, absolute https URL), linked from every CDS Hooks card.
    programme: tuple[str, str] | None = None
    timezone: str = "UTC"  # [city].timezone: the zone of "today" for a child's age and a future date

    @property
    def reference_files(self) -> list[Path]:
        files = [self.tracts, self.community_areas, self.housing_age, self.community_profiles, self.addresses]
        return files + ([self.area_outcomes.file] if self.area_outcomes else [])


def _columns(
    reader: ConfigReader, key: str, required: tuple[str, ...], optional: tuple[str, ...]
) -> dict[str, str]:
    columns = dict(reader.get(key, dict))
    for name in required:
        if not isinstance(columns.get(name), str):
            raise reader.error(f"{key}.{name}", "missing mapping to a column name")
    unknown = sorted(set(columns) - set(required) - set(optional))
    if unknown:
        raise reader.error(f"{key}.{unknown[0]}", "unknown field")
    return {name: str(value) for name, value in columns.items()}


def _synthetic(reader: ConfigReader) -> SyntheticSpec:
    years = reader.get("synthetic.birth_years", list)
    if len(years) != 2 or not all(isinstance(y, int) for y in years) or years[0] > years[1]:
        raise reader.error("synthetic.birth_years", "expected [first_year, last_year]")
    base_rate = float(reader.get("synthetic.base_rate", float))
    if not 0 < base_rate < 0.5:
        raise reader.error("synthetic.base_rate", "expected a share between 0 and 0.5")
    effects = {k: float(v) for k, v in reader.get("synthetic.effects", dict).items()}
    for name in ("housing_risk", "low_income", "renter"):
        if name not in effects:
            raise reader.error(f"synthetic.effects.{name}", "missing")
    return SyntheticSpec(
        seed=reader.get("synthetic.seed", int),
        birth_years=(years[0], years[1]),
        children_per_year=reader.get("synthetic.children_per_year", int),
        base_rate=base_rate,
        effects=effects,
        address_effect_sd=float(reader.get("synthetic.address_effect_sd", (int, float))),
        address_only_share=float(reader.get("synthetic.address_only_share", (int, float), 0.0)),
        group_columns={str(k): str(v) for k, v in reader.get("synthetic.group_columns", dict).items()},
    )


def _year_column(reader: ConfigReader, key: str) -> str:
    value = str(reader.get(key, str))
    if "{year}" not in value:
        raise reader.error(key, 'expected a column name containing "{year}", e.g. "RATE_{year}"')
    return value


def _area_outcomes(reader: ConfigReader) -> AreaOutcomesSpec | None:
    if reader.get("area_outcomes", dict, None) is None:
        return None
    years = reader.get("area_outcomes.years", list)
    if len(years) != 2 or not all(isinstance(y, int) for y in years) or years[0] > years[1]:
        raise reader.error("area_outcomes.years", "expected [first_year, last_year]")
    level = reader.get("area_outcomes.area_level", str, "community_area")
    if level not in AREA_LEVELS:
        raise reader.error("area_outcomes.area_level", f"expected one of {list(AREA_LEVELS)}")
    unit = reader.get("area_outcomes.rate_unit", str)
    if unit not in RATE_UNITS:
        raise reader.error("area_outcomes.rate_unit", f"expected one of {list(RATE_UNITS)}")
    lag = reader.get("area_outcomes.publication_lag_years", int, 1)
    if lag < 0:
        raise reader.error("area_outcomes.publication_lag_years", "expected 0 or more years")
    spans = {}
    for name, default in (("mean_years", 3), ("trend_years", 5)):
        spans[name] = reader.get(f"area_outcomes.{name}", int, default)
        if spans[name] < 1:
            raise reader.error(f"area_outcomes.{name}", "expected 1 or more years")
    skip = reader.get("area_outcomes.skip_lines", list, [])
    if not all(isinstance(line, int) and line >= 2 for line in skip):
        raise reader.error(
            "area_outcomes.skip_lines", "expected file line numbers after the header (2 or more)"
        )
    bad_values = reader.get("area_outcomes.on_bad_value", str, "error")
    if bad_values not in ("error", "impute"):
        raise reader.error("area_outcomes.on_bad_value", 'expected "error" or "impute"')
    return AreaOutcomesSpec(
        file=reader.file("area_outcomes.file"),
        area_level=level,
        area_column=reader.get("area_outcomes.area_column", str),
        rate_column=_year_column(reader, "area_outcomes.rate_column"),
        standard_error_column=_year_column(reader, "area_outcomes.standard_error_column"),
        years=(years[0], years[1]),
        skip_lines=tuple(skip),
        rate_unit=unit,
        publication_lag_years=lag,
        mean_years=spans["mean_years"],
        trend_years=spans["trend_years"],
        impute=bad_values == "impute",
        backtest_file=(
            (reader.path.parent / backtest).resolve()
            if (backtest := reader.get("area_outcomes.backtest", str, None))
            else None
        ),
    )


def load_lead_config(path: Path | str) -> LeadConfig:
    """Read and validate a lead-risk config; raises ConfigError naming the file and key."""
    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(path, "(file)", "config file not found")
    text = path.read_text(encoding="utf-8")
    try:
        document: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(path, "(syntax)", str(error)) from None
    reader = ConfigReader(path, document)
    if reader.get("task", str) != "lead":
        raise reader.error("task", 'a lead-risk config needs task = "lead"')

    source = reader.get("outcomes.source", str)
    if source not in ("synthetic", "file"):
        raise reader.error("outcomes.source", 'expected "synthetic" or "file"')
    outcome_columns = _columns(reader, "outcomes.columns", OUTCOME_FIELDS, (*LOCATION_FIELDS, "audit_group"))
    scoring_columns = _columns(reader, "scoring.columns", SCORING_FIELDS, (*LOCATION_FIELDS, "as_of"))
    for key, columns in (("outcomes.columns", outcome_columns), ("scoring.columns", scoring_columns)):
        if "address" not in columns and not {"latitude", "longitude"} <= set(columns):
            raise reader.error(key, "map latitude and longitude, or address (or all three)")
    ages = reader.get("examples.score_age_days", list)
    if len(ages) != 2 or not all(isinstance(a, int) and a >= 0 for a in ages) or ages[0] > ages[1]:
        raise reader.error("examples.score_age_days", "expected [youngest, oldest] ages in days")
    horizon = reader.get("label.horizon_days", int)
    if ages[1] >= horizon:
        raise reader.error(
            "examples.score_age_days", f"the oldest age must be below label.horizon_days {horizon}"
        )
    top_share = float(reader.get("fairness.top_share", float, 0.05))
    if not 0 < top_share < 1:
        raise reader.error("fairness.top_share", "expected a share between 0 and 1")
    return LeadConfig(
        path=path,
        text=text,
        city=reader.get("city.name", str),
        display_name=reader.get("city.display_name", str, reader.get("city.name", str)),
        model_name=reader.get("model.name", str),
        tracts=reader.file("reference.tracts"),
        tract_id=reader.get("reference.tract_id", str),
        tract_community_area=reader.get("reference.tract_community_area", str),
        community_areas=reader.file("reference.community_areas"),
        community_area_id=reader.get("reference.community_area_id", str),
        housing_age=reader.file("reference.housing_age"),
        community_profiles=reader.file("reference.community_profiles"),
        community_columns=_columns(reader, "reference.community_columns", COMMUNITY_FIELDS, ()),
        addresses=reader.file("reference.addresses"),
        label_name=reader.get("label.name", str),
        label_description=reader.get("label.description", str),
        threshold=float(reader.get("label.threshold_ug_dl", (int, float))),
        horizon_days=horizon,
        outcome_file=reader.file("outcomes.file") if source == "file" else None,
        outcome_date_format=reader.get("outcomes.date_format", str),
        outcome_columns=outcome_columns,
        synthetic=_synthetic(reader) if source == "synthetic" else None,
        score_age_days=(ages[0], ages[1]),
        examples_seed=reader.get("examples.seed", int),
        block_radius_m=float(reader.get("features.block_radius_m", (int, float))),
        validation_cohorts=reader.get("validation.cohorts", int, 2),
        audit_top_share=top_share,
        audit_tau=float(reader.get("fairness.tau", float, 0.8)),
        scoring_columns=scoring_columns,
        scoring_date_format=reader.get("scoring.date_format", str),
        area_outcomes=_area_outcomes(reader),
        programme=_programme(reader),
        timezone=city_timezone(reader),
    )


def _programme(reader: ConfigReader) -> tuple[str, str] | None:
    url = reader.get("programme.url", str, None)
    if url is None:
        return None
    if not url.startswith("https://"):
        raise reader.error("programme.url", "expected an absolute https:// URL")
    return reader.get("programme.label", str, "Lead poisoning prevention programme"), url
