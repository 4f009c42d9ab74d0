"""The inspection task's city configuration: everything city-specific lives in one TOML file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from training.config import (
    ConfigError,
    ConfigErrors,
    ConfigReader,
    TableSource,
    city_timezone,
    read_document,
)
from training.inspections.config_schema import DEFAULT_FAMILIES, INSPECTION_FIELDS, validate_document

REQUIRED_FIELDS = tuple(name for name, (required, _) in INSPECTION_FIELDS.items() if required)


SEVERITIES = ("critical", "serious", "minor")
# The daily list's own query parameters: an `[areas]` filter may not take one of these names.
LIST_PARAMETERS = frozenset(
    {"date", "limit", "facility_type", "zip", "community_area", "min_tier", "format", "city", "list_id"}
)


@dataclass(frozen=True)
class EventSource:
    """Point events (complaints, crimes) counted near an establishment before a date."""

    name: str
    source: TableSource
    date_column: str
    latitude: str
    longitude: str
    window_days: int
    radius_km: float
    exclude_column: str | None = None
    exclude_values: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExcludeRule:
    """Rows whose `column` holds one of `values` are not inspections (e.g. a 1900-01-01 placeholder)."""

    column: str
    values: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class WeatherSource:
    source: TableSource
    date_column: str
    temperature_max_column: str
    window_days: int


@dataclass(frozen=True)
class LicenseSource:
    source: TableSource
    columns: dict[str, str]
    other: dict[str, tuple[str, ...]]


@dataclass(frozen=True)
class CityConfig:
    """A parsed, validated city configuration."""

    path: Path
    raw: dict[str, Any]
    city: str
    display_name: str
    model_name: str
    inspections: TableSource
    columns: dict[str, str]
    entry_separator: str
    code_pattern: re.Pattern[str]
    severity_by_code: dict[int, str]
    violation_counts: dict[str, str]  # counts mode: severity class -> column; empty in text mode
    severity_names: dict[str, str]  # class -> the city's own word for it, in feature descriptions
    families: tuple[str, ...]
    label_name: str
    label_severity: str
    label_min_count: int
    label_description: str
    inspection_types: tuple[str, ...]
    drop_results: tuple[str, ...]
    fail_results: tuple[str, ...]
    licenses: LicenseSource | None
    environment: tuple[EventSource, ...]
    weather: WeatherSource | None
    neighbourhood_radii_km: tuple[float, ...] = (1.0, 2.0)
    neighbourhood_windows_days: tuple[int, ...] = (90, 365)
    neighbourhood_nearest: tuple[tuple[int, int], ...] = ((90, 25),)
    area_field: str | None = None
    area_windows_days: tuple[int, ...] = ()
    roster_inspected_within_days: int = 1095
    map_boundaries: Path | None = None
    map_name_property: str = "name"
    roster_require_active_license: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"
    inspection_key: tuple[str, ...] = ()  # columns that together identify one inspection
    flag_classes: dict[str, str] = field(default_factory=dict)  # row mode: flag value -> class
    code_patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()  # (class, regex on the whole code)
    exclude: tuple[ExcludeRule, ...] = ()
    label_score_at_least: float | None = None
    label_grades: tuple[str, ...] = ()
    areas: dict[str, str] = field(default_factory=dict)  # daily-list filter name -> column
    area_layers: dict[str, tuple[Path, str]] = field(default_factory=dict)  # name -> (GeoJSON, property)
    glm_features: tuple[str, ...] | None = None

    @property
    def area_filters(self) -> tuple[str, ...]:
        """Every `[areas]` filter's name, from a column or a polygon layer."""
        return (*self.areas, *self.area_layers)

    @property
    def row_per_violation(self) -> bool:
        """Each row is one violation (of an inspection named by `inspection_key` or its id)."""
        return "violation_code" in self.columns or "violation_flag" in self.columns

    @property
    def severity_classes(self) -> tuple[str, ...]:
        """The classes this city's data can hold, most severe first: a class it does not have is never
        a feature or a word in its outputs."""
        if self.violation_counts:
            have = set(self.violation_counts)
        else:
            have = set(self.severity_by_code.values()) | set(self.flag_classes.values())
            have |= {name for name, _ in self.code_patterns}
        return tuple(name for name in SEVERITIES if name in have)

    def severity_word(self, name: str) -> str:
        """The city's word for a class (`[violations.names]`), else the class name."""
        return self.severity_names.get(name, name)


def parse_code_ranges(reader: ConfigReader, key: str, specs: tuple[str, ...]) -> list[int]:
    """Expand ["1-14", "70"] into [1, ..., 14, 70]."""
    codes: list[int] = []
    for spec in specs:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", spec)
        if not match:
            raise reader.error(key, f"bad code range {spec!r}; use 'N' or 'N-M'")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if high < low:
            raise reader.error(key, f"bad code range {spec!r}: end before start")
        codes.extend(range(low, high + 1))
    return codes


def _severity_map(reader: ConfigReader) -> dict[int, str]:
    severity: dict[str, Any] = reader.get("violations.severity", dict, {})
    by_code: dict[int, str] = {}
    for name in severity:
        if name not in SEVERITIES:
            raise reader.error(f"violations.severity.{name}", f"unknown class; use one of {SEVERITIES}")
        key = f"violations.severity.{name}"
        for code in parse_code_ranges(reader, key, reader.strings(key)):
            if code in by_code:
                raise reader.error(key, f"code {code} is already classed as {by_code[code]}")
            by_code[code] = name
    return by_code


def _severity_names(reader: ConfigReader) -> dict[str, str]:
    """`[violations.names]`: the city's words for the classes (Boston's *** class is "severe", not
    "critical"), used wherever a feature's description names a class."""
    names: dict[str, Any] = reader.get("violations.names", dict, {})
    for name, word in names.items():
        if name not in SEVERITIES:
            raise reader.error(f"violations.names.{name}", f"unknown class; use one of {SEVERITIES}")
        if not isinstance(word, str) or not word.strip():
            raise reader.error(f"violations.names.{name}", "must be a non-empty string")
    return {name: word.strip() for name, word in names.items()}


def _flag_classes(reader: ConfigReader) -> dict[str, str]:
    classes: dict[str, Any] = reader.get("violations.flag_classes", dict, {})
    for value, name in classes.items():
        if name not in SEVERITIES:
            raise reader.error(
                f"violations.flag_classes.{value}", f"unknown class {name!r}; use one of {SEVERITIES}"
            )
    return {str(value).strip(): str(name) for value, name in classes.items()}


def _code_patterns(reader: ConfigReader) -> tuple[tuple[str, re.Pattern[str]], ...]:
    patterns: dict[str, Any] = reader.get("violations.code_patterns", dict, {})
    compiled = []
    for name in SEVERITIES:  # most severe first: a code matching two classes takes the worse
        key = f"violations.code_patterns.{name}"
        for text in reader.strings(key, []) if name in patterns else ():
            try:
                compiled.append((name, re.compile(text)))
            except re.error as error:
                raise reader.error(key, f"invalid regular expression {text!r}: {error}") from None
    return tuple(compiled)


def _exclude_rules(reader: ConfigReader) -> tuple[ExcludeRule, ...]:
    rules = []
    for index, item in enumerate(reader.get("exclude", list, [])):
        sub = ConfigReader(reader.path, item if isinstance(item, dict) else {})
        try:
            rules.append(
                ExcludeRule(
                    column=sub.get("column", str),
                    values=sub.strings("values"),
                    reason=sub.get("reason", str, ""),
                )
            )
        except ConfigError as error:
            raise reader.error(f"exclude[{index}].{error.key}", error.problem) from None
    return tuple(rules)


def _area_names(reader: ConfigReader) -> dict[str, Any]:
    areas: dict[str, Any] = reader.get("areas", dict, {})
    for name in areas:
        if name in LIST_PARAMETERS or not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise reader.error(
                f"areas.{name}",
                "an area filter's name is a lower-case query parameter that is not one of the list's own "
                f"({', '.join(sorted(LIST_PARAMETERS))})",
            )
    return areas


def _areas(reader: ConfigReader) -> dict[str, str]:
    """Filters read from a column: `borough = "BORO"`."""
    return {name: value for name, value in _area_names(reader).items() if isinstance(value, str)}


def _area_layers(reader: ConfigReader) -> dict[str, tuple[Path, str]]:
    """Filters drawn from a polygon layer: `[areas.ward] boundaries = "wards.geojson"`,
    `name_property = "ward"` (the inspections need latitude and longitude)."""
    layers = {}
    for name, value in _area_names(reader).items():
        if isinstance(value, str):
            continue
        if not isinstance(value, dict) or "boundaries" not in value:
            raise reader.error(f"areas.{name}", 'expected a column name, or a table with boundaries = "file"')
        if "latitude" not in reader.get("inspections.columns", dict) or "longitude" not in reader.get(
            "inspections.columns", dict
        ):
            raise reader.error(
                f"areas.{name}", "a polygon layer needs inspections.columns.latitude and .longitude"
            )
        layers[name] = (
            reader.file(f"areas.{name}.boundaries"),
            reader.get(f"areas.{name}.name_property", str, "name"),
        )
    return layers


def _event_sources(reader: ConfigReader) -> tuple[EventSource, ...]:
    items = reader.get("environment", list, [])
    sources = []
    for index, item in enumerate(items):
        key = f"environment[{index}]"
        sub = ConfigReader(reader.path, item if isinstance(item, dict) else {})
        try:
            source = EventSource(
                name=sub.get("name", str),
                source=TableSource(sub.file("file"), sub.get("date_format", str), key),
                date_column=sub.get("date_column", str),
                latitude=sub.get("latitude", str),
                longitude=sub.get("longitude", str),
                window_days=sub.get("window_days", int),
                radius_km=float(sub.get("radius_km", (int, float))),
                exclude_column=sub.get("exclude_column", str, None),
                exclude_values=sub.strings("exclude_values", []),
            )
        except ConfigError as error:
            raise reader.error(f"{key}.{error.key}", error.problem) from None
        if source.window_days <= 0 or source.radius_km <= 0:
            raise reader.error(key, "window_days and radius_km must be positive")
        sources.append(source)
    return tuple(sources)


def _require_license(reader: ConfigReader, licenses: LicenseSource | None) -> bool:
    required: bool = reader.get("roster.require_active_license", bool, False)
    if required and (licenses is None or "term_end" not in licenses.columns):
        raise reader.error("roster.require_active_license", "needs [licenses] with a term_end column mapping")
    return required


def _nearest(reader: ConfigReader) -> tuple[tuple[int, int], ...]:
    pairs = reader.get("neighbourhood.nearest", list, [[90, 25]])
    if not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) and v > 0 for v in p) for p in pairs
    ):
        raise reader.error(
            "neighbourhood.nearest", "expected a list of [window_days, k] pairs of positive integers"
        )
    return tuple((int(w), int(k)) for w, k in pairs)


def load_city_config(path: Path | str) -> CityConfig:
    """Read and validate a city config; raises ConfigError naming the file and key."""
    path, document = read_document(path)
    reader = ConfigReader(path, document)
    problems = validate_document(path, document)
    if problems:
        raise ConfigErrors([ConfigError(path, problem.key, problem.message) for problem in problems])

    columns: dict[str, str] = dict(reader.get("inspections.columns", dict))
    for name in REQUIRED_FIELDS:
        if not isinstance(columns.get(name), str):
            raise reader.error(f"inspections.columns.{name}", "missing mapping to a column name")
    inspection_key = reader.strings("inspections.key", [])
    if not inspection_key and not isinstance(columns.get("inspection_id"), str):
        raise reader.error("inspections.columns.inspection_id", "missing: map it or set inspections.key")
    violation_counts: dict[str, str] = dict(reader.get("violations.counts", dict, {}))
    row_mode = "violation_code" in columns or "violation_flag" in columns
    by_score = reader.get("label.score_at_least", (int, float), None) is not None or "grades" in reader.get(
        "label", dict, {}
    )
    if not violation_counts and "violations" not in columns and not row_mode and not by_score:
        raise reader.error(
            "violations",
            "map inspections.columns.violations (text), violation_code / violation_flag (one row per "
            "violation), or set violations.counts",
        )

    pattern_text = reader.get("violations.code_pattern", str, r"^\s*(\d+)\.")
    try:
        code_pattern = re.compile(pattern_text)
    except re.error as error:
        raise reader.error("violations.code_pattern", f"invalid regular expression: {error}") from None
    if code_pattern.groups < 1:
        raise reader.error("violations.code_pattern", "needs one group capturing the code number")

    score_at_least = reader.get("label.score_at_least", (int, float), None)
    grades = reader.strings("label.grades", [])
    if score_at_least is not None and "score" not in columns:
        raise reader.error("label.score_at_least", "needs inspections.columns.score")
    if grades and "grade" not in columns:
        raise reader.error("label.grades", "needs inspections.columns.grade")
    label_severity = reader.get("label.severity", str, "critical")
    if label_severity not in SEVERITIES:
        raise reader.error("label.severity", f"unknown class {label_severity!r}; use one of {SEVERITIES}")

    licenses = None
    if "licenses" in document:
        license_columns = dict(reader.get("licenses.columns", dict))
        for name in ("establishment_id", "account_id", "description", "term_start"):
            if not isinstance(license_columns.get(name), str):
                raise reader.error(f"licenses.columns.{name}", "missing mapping to a column name")
        other = {
            flag: reader.strings(f"licenses.other.{flag}") for flag in reader.get("licenses.other", dict, {})
        }
        licenses = LicenseSource(reader.table("licenses"), license_columns, other)

    weather = None
    if "weather" in document:
        weather = WeatherSource(
            source=reader.table("weather"),
            date_column=reader.get("weather.date_column", str),
            temperature_max_column=reader.get("weather.temperature_max_column", str),
            window_days=reader.get("weather.window_days", int),
        )

    area_field = reader.get("neighbourhood.area_field", str, None)
    if area_field is not None and area_field not in columns:
        raise reader.error("neighbourhood.area_field", f"{area_field!r} is not a mapped inspections column")
    radii = tuple(float(r) for r in reader.get("neighbourhood.radii_km", list, [1.0, 2.0]))
    windows = tuple(int(w) for w in reader.get("neighbourhood.window_days", list, [90, 365]))
    return CityConfig(
        path=path,
        raw=document,
        city=reader.get("city.name", str),
        display_name=reader.get("city.display_name", str, reader.get("city.name", str)),
        model_name=reader.get("model.name", str),
        inspections=reader.table("inspections"),
        columns=columns,
        entry_separator=reader.get("violations.entry_separator", str, "|"),
        code_pattern=code_pattern,
        severity_by_code=_severity_map(reader),
        violation_counts=violation_counts,
        severity_names=_severity_names(reader),
        families=reader.strings("features.families", list(DEFAULT_FAMILIES)),
        label_name=reader.get("label.name", str),
        label_severity=label_severity,
        label_min_count=reader.get("label.min_count", int, 1),
        label_description=reader.get("label.description", str, ""),
        inspection_types=reader.strings("scope.inspection_types", []),
        drop_results=reader.strings("scope.drop_results", []),
        fail_results=reader.strings("scope.fail_results", []),
        licenses=licenses,
        environment=_event_sources(reader),
        weather=weather,
        neighbourhood_radii_km=radii,
        neighbourhood_windows_days=windows,
        neighbourhood_nearest=_nearest(reader),
        roster_inspected_within_days=reader.get("roster.inspected_within_days", int, 1095),
        map_boundaries=reader.file("map.boundaries") if "map" in document else None,
        map_name_property=reader.get("map.name_property", str, "name"),
        roster_require_active_license=_require_license(reader, licenses),
        area_field=area_field,
        area_windows_days=tuple(int(w) for w in reader.get("neighbourhood.area_window_days", list, [])),
        timezone=city_timezone(reader),
        inspection_key=inspection_key,
        flag_classes=_flag_classes(reader),
        code_patterns=_code_patterns(reader),
        exclude=_exclude_rules(reader),
        label_score_at_least=None if score_at_least is None else float(score_at_least),
        label_grades=grades,
        areas=_areas(reader),
        area_layers=_area_layers(reader),
        glm_features=reader.strings("baselines.glm_features") if "baselines" in document else None,
    )
