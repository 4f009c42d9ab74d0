"""Every key a city config may hold: its type, whether it is required, its default and its meaning.

One table serves two readers: `validate_document` (unknown keys, wrong types, missing files and
columns, all reported at once before any work) and `reference_markdown` (the config reference in
docs/new-city.md, which a test keeps identical to this table). The keys of a feature family's own
sections, its needs and the family names come from the family registry
(`training/inspections/features/registry.py`), read when first asked for: the families import this module.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from training.inspections.features.family import FeatureFamily

DEFAULT_FAMILIES = ("history", "calendar")


@dataclass(frozen=True)
class Key:
    path: str  # dotted; "environment[]." marks a key of each [[environment]] table; "*" any name
    type: str  # string, path, integer, number, boolean, list of strings, list of numbers, ...
    required: bool
    default: str
    meaning: str


def _columns(section: str, fields: dict[str, tuple[bool, str]]) -> list[Key]:
    return [
        Key(f"{section}.{name}", "string (column)", required, "—" if required else "not used", meaning)
        for name, (required, meaning) in fields.items()
    ]


INSPECTION_FIELDS: dict[str, tuple[bool, str]] = {
    "inspection_id": (
        False,
        "unique id of an inspection; required unless `inspections.key` groups rows into inspections",
    ),
    "establishment_id": (True, "stable id of the inspected establishment (licence number, anonymised id)"),
    "date": (True, "inspection date, in `inspections.date_format`"),
    "inspection_type": (
        False,
        "type of visit (routine, complaint, ...); needed for `scope.inspection_types`",
    ),
    "result": (False, "outcome text (Pass, Fail, ...); needed for `scope.fail_results` and `drop_results`"),
    "violations": (False, "violations text, parsed with `violations.code_pattern` (text mode)"),
    "latitude": (False, "WGS84 latitude; needed by the neighbourhood and environment families"),
    "longitude": (False, "WGS84 longitude; needed by the neighbourhood and environment families"),
    "facility_type": (False, "facility type (restaurant, school, ...); establishment family"),
    "risk_category": (False, "the city's own risk class of the establishment; establishment family"),
    "name": (False, "establishment name, shown on the daily list"),
    "address": (False, "street address, shown on the daily list"),
    "zip": (False, "ZIP or postal code: a daily-list filter and a possible `neighbourhood.area_field`"),
    "score": (False, "numeric inspection score (points); the score family and `label.score_at_least`"),
    "grade": (False, "the inspection's grade (A, B, ...); `label.grades`"),
    "violation_code": (False, "row mode: the code of the one violation on this row (e.g. `04L`)"),
    "violation_flag": (False, "row mode: per-row severity flag, classed by `violations.flag_classes`"),
}

_KEYS_BEFORE_FAMILIES: tuple[Key, ...] = (
    Key("task", "string", False, "inspections", "which pipeline this config drives: `inspections` or `lead`"),
    Key(
        "city.name",
        "string",
        True,
        "—",
        "short lower-case city id used in URLs (`/v1/inspections/{city}/...`)",
    ),
    Key("city.display_name", "string", False, "city.name", "name shown to people"),
    Key(
        "city.timezone",
        "string",
        False,
        "UTC",
        "IANA time zone of the city's days (`America/New_York`): today, tomorrow, staleness, future dates",
    ),
    Key("model.name", "string", True, "—", "bundle name: bundles go to `models/<name>/<version>/`"),
    Key("inspections.file", "path", True, "—", "the inspections CSV (plain or .gz), relative to this file"),
    Key("inspections.date_format", "string", True, "—", "strptime format of its dates, e.g. `%m/%d/%Y`"),
    Key(
        "inspections.key",
        "list of strings",
        False,
        "not used",
        "columns that together identify one inspection (row per violation: establishment, date, type); "
        "rows sharing them are grouped into one inspection before anything else",
    ),
    *_columns("inspections.columns", INSPECTION_FIELDS),
    Key("violations.entry_separator", "string", False, "|", "text mode: separator between violation entries"),
    Key(
        "violations.code_pattern",
        "string (regex)",
        False,
        r"^\s*(\d+)\.",
        "text mode: regex whose group 1 is an entry's code",
    ),
    Key(
        "violations.severity.critical",
        "list of strings",
        False,
        "[]",
        'text mode: codes of the class, e.g. `["1-14"]`',
    ),
    Key("violations.severity.serious", "list of strings", False, "[]", "text mode: codes classed serious"),
    Key("violations.severity.minor", "list of strings", False, "[]", "text mode: codes classed minor"),
    Key(
        "violations.flag_classes.*",
        "string",
        False,
        "not used",
        'row mode: a `violation_flag` value → class, e.g. `"Not Critical" = "minor"`; '
        "unlisted values (Not Applicable) are not violations",
    ),
    Key(
        "violations.code_patterns.critical",
        "list of strings",
        False,
        "[]",
        'regexes a whole violation code matches to be critical, e.g. `["^0[2-6]"]` (row or text mode; '
        "used where no flag or numeric range classes the code)",
    ),
    Key("violations.code_patterns.serious", "list of strings", False, "[]", "regexes of serious codes"),
    Key("violations.code_patterns.minor", "list of strings", False, "[]", "regexes of minor codes"),
    Key(
        "violations.counts.critical",
        "string (column)",
        False,
        "not used",
        "counts mode: column counting the most severe class",
    ),
    Key(
        "violations.counts.serious",
        "string (column)",
        False,
        "not used",
        "counts mode: column counting the middle class",
    ),
    Key(
        "violations.counts.minor",
        "string (column)",
        False,
        "not used",
        "counts mode: column counting the least severe class",
    ),
    Key(
        "violations.names.critical",
        "string",
        False,
        "critical",
        "the city's word for the most severe class, in feature descriptions (Boston: severe)",
    ),
    Key("violations.names.serious", "string", False, "serious", "the city's word for the middle class"),
    Key("violations.names.minor", "string", False, "minor", "the city's word for the least severe class"),
    Key("label.name", "string", True, "—", "name of the predicted outcome"),
    Key(
        "label.severity",
        "string",
        False,
        "—",
        "`critical`, `serious` or `minor`: the class the label counts (one of severity, "
        "score_at_least, grades is required)",
    ),
    Key(
        "label.min_count", "integer", False, "1", "label is 1 when at least this many violations of the class"
    ),
    Key(
        "label.score_at_least",
        "number",
        False,
        "not used",
        "label is 1 when the inspection's `score` is at least this (e.g. 28: a C in New York)",
    ),
    Key("label.grades", "list of strings", False, "not used", "label is 1 when the grade is one of these"),
    Key("label.description", "string", False, '""', "the label in words, for the model card"),
    Key(
        "exclude[].column",
        "string (column)",
        False,
        "no rule",
        "an inspections column; rows holding one of `values` there are set aside and counted",
    ),
    Key(
        "exclude[].values",
        "list of strings",
        False,
        "—",
        'values meaning "not a real row", e.g. the placeholder date `["01/01/1900"]`',
    ),
    Key("exclude[].reason", "string", False, '""', "why, in the training progress (placeholder date)"),
    Key(
        "scope.inspection_types",
        "list of strings",
        False,
        "all",
        "inspection types the model learns from and ranks",
    ),
    Key(
        "scope.drop_results",
        "list of strings",
        False,
        "[]",
        "results meaning no inspection took place (rows dropped)",
    ),
    Key("scope.fail_results", "list of strings", False, "[]", "results that count as a failed inspection"),
)

_KEYS_AFTER_FAMILIES: tuple[Key, ...] = (
    Key(
        "roster.inspected_within_days",
        "integer",
        False,
        "1095",
        "daily list: establishments inspected within this many days",
    ),
    Key(
        "roster.require_active_license",
        "boolean",
        False,
        "false",
        "daily list: only establishments licensed on the day",
    ),
    Key("map.boundaries", "path", False, "no map", "GeoJSON polygons drawn behind the daily list's map"),
    Key("map.name_property", "string", False, "name", "the polygons' property naming each area"),
    Key(
        "areas.*",
        "string (column)",
        False,
        "none",
        'daily-list filters: `borough = "BORO"` lets `?borough=Queens` filter the list; or a polygon '
        'layer, `[areas.ward]` with `boundaries = "wards.geojson"` and `name_property = "ward"` (needs '
        "coordinates); an unknown value is a 422 listing the known ones",
    ),
    Key(
        "baselines.glm_features",
        "list of strings",
        False,
        "Chicago's 2014 glm features",
        "feature columns of the logistic baseline `civicrisk evaluate` prints beside the model",
    ),
)


def _registry() -> tuple[FeatureFamily, ...]:
    from training.inspections.features import registry  # imported late: every family module imports this one

    return registry.REGISTRY


def families() -> tuple[str, ...]:
    """The names of the registered feature families."""
    return tuple(family.name for family in _registry())


def config_keys() -> tuple[Key, ...]:
    """Every key a city config may hold, in the order of the config reference."""
    listed = families()
    features = Key(
        "features.families",
        "list of strings",
        False,
        str(list(DEFAULT_FAMILIES)),
        f"feature families to build, from {', '.join(listed)}",
    )
    owned = tuple(key for family in _registry() for key in family.keys)
    return (*_KEYS_BEFORE_FAMILIES, features, *owned, *_KEYS_AFTER_FAMILIES)


def __getattr__(name: str) -> tuple[Any, ...]:
    # FAMILIES and KEYS as module constants, for readers of the table that predate the registry.
    if name == "FAMILIES":
        return families()
    if name == "KEYS":
        return config_keys()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "path": (str,),
    "string (column)": (str,),
    "string (regex)": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


@dataclass(frozen=True)
class Problem:
    key: str
    message: str


def _walk(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    """(key as written, key as in KEYS, value) for every leaf; arrays of tables become `name[]`."""
    for name, value in node.items():
        written, generic = f"{prefix}{name}", f"{prefix}{name}"
        if isinstance(value, dict):
            yield from _walk(value, written + ".")
        elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
            for index, item in enumerate(value):
                for leaf_written, leaf_generic, leaf in _walk(item):
                    yield f"{written}[{index}].{leaf_written}", f"{generic}[].{leaf_generic}", leaf
        else:
            yield written, generic, value


def _spec(generic: str, known: tuple[Key, ...]) -> Key | None:
    for key in known:
        if key.path == generic or (key.path.endswith(".*") and generic.startswith(key.path[:-1])):
            return key
    return None


def _type_ok(key: Key, value: Any) -> bool:
    if key.type.startswith("list"):
        if not isinstance(value, list):
            return False
        if key.type == "list of strings":
            return all(isinstance(item, str) for item in value)
        if key.type in ("list of numbers", "list of integers"):
            numbers: tuple[type, ...] = (int, float) if key.type == "list of numbers" else (int,)
            return all(isinstance(item, numbers) and not isinstance(item, bool) for item in value)
        return True
    allowed = _TYPES[key.type]
    return isinstance(value, allowed) and (bool in allowed or not isinstance(value, bool))


def _header(path: Path) -> list[str] | None:
    try:
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _check_columns(
    base: Path, table: str, document: dict[str, Any], column_keys: dict[str, str]
) -> list[Problem]:
    """Every mapped column exists in its file (read as a header only)."""
    file_name = document.get("file")
    if not isinstance(file_name, str):
        return []
    path = (base / file_name).resolve()
    if not path.is_file():
        return []  # reported as a missing file already
    header = _header(path)
    if header is None:
        return [Problem(f"{table}.file", f"cannot read a CSV header from {path}")]
    problems = []
    for key, column in column_keys.items():
        if isinstance(column, str) and column not in header:
            close = difflib.get_close_matches(column, header, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(Problem(key, f"column {column!r} is not in {path.name}{hint}"))
    return problems


def validate_document(path: Path, document: dict[str, Any]) -> list[Problem]:
    """Every problem with a city config, found without reading more than the files' headers."""
    problems: list[Problem] = []
    base = path.parent
    known = config_keys()
    generic_paths = [key.path for key in known]
    for written, generic, value in _walk(document):
        spec = _spec(generic, known)
        if spec is None:
            close = difflib.get_close_matches(generic, generic_paths, n=1, cutoff=0.75)
            hint = f"; did you mean {close[0].replace('[]', '[...]')!r}?" if close else ""
            problems.append(Problem(written, f"unknown key{hint}"))
        elif not _type_ok(spec, value):
            problems.append(Problem(written, f"expected {spec.type}, got {type(value).__name__} {value!r}"))
        elif spec.type == "path" and not (base / value).resolve().is_file():
            problems.append(Problem(written, f"file not found: {(base / value).resolve()}"))
    for key in known:
        if key.required and not present(document, key.path):
            problems.append(Problem(key.path, "missing (required)"))
    problems.extend(_family_problems(document))
    problems.extend(_layout_problems(document))
    inspections = document.get("inspections", {})
    if isinstance(inspections, dict):
        columns = inspections.get("columns", {})
        mapped = (
            {f"inspections.columns.{k}": v for k, v in columns.items()} if isinstance(columns, dict) else {}
        )
        counts = (
            document.get("violations", {}).get("counts", {})
            if isinstance(document.get("violations"), dict)
            else {}
        )
        if isinstance(counts, dict):
            mapped |= {f"violations.counts.{k}": v for k, v in counts.items()}
        mapped |= _row_layout_columns(document)
        problems.extend(_check_columns(base, "inspections", inspections, mapped))
    licenses = document.get("licenses")
    if isinstance(licenses, dict) and isinstance(licenses.get("columns"), dict):
        mapped = {f"licenses.columns.{k}": v for k, v in licenses["columns"].items()}
        problems.extend(_check_columns(base, "licenses", licenses, mapped))
    weather = document.get("weather")
    if isinstance(weather, dict):
        mapped = {f"weather.{k}": weather.get(k) for k in ("date_column", "temperature_max_column")}
        problems.extend(_check_columns(base, "weather", weather, mapped))
    for index, source in enumerate(document.get("environment", []) or []):
        if isinstance(source, dict):
            keys = ("date_column", "latitude", "longitude", "exclude_column")
            mapped = {f"environment[{index}].{k}": source.get(k) for k in keys if k in source}
            problems.extend(_check_columns(base, f"environment[{index}]", source, mapped))
    return problems


def _row_layout_columns(document: dict[str, Any]) -> dict[str, Any]:
    """Columns named by the inspection key, the exclude rules and the area filters (checked like
    `inspections.columns`)."""
    mapped: dict[str, Any] = {}
    inspections = document.get("inspections", {})
    key = inspections.get("key") if isinstance(inspections, dict) else None
    if isinstance(key, list):
        mapped |= {f"inspections.key[{index}]": column for index, column in enumerate(key)}
    for index, rule in enumerate(document.get("exclude", []) or []):
        if isinstance(rule, dict) and "column" in rule:
            mapped[f"exclude[{index}].column"] = rule["column"]
    areas = document.get("areas")
    if isinstance(areas, dict):
        mapped |= {f"areas.{name}": column for name, column in areas.items()}
    return mapped


def _layout_problems(document: dict[str, Any]) -> list[Problem]:
    """An inspection needs an id or a key, and the label one rule."""
    problems = []
    inspections = document.get("inspections")
    if isinstance(inspections, dict):
        columns = inspections.get("columns")
        has_id = isinstance(columns, dict) and "inspection_id" in columns
        if not has_id and "key" not in inspections:
            problems.append(
                Problem(
                    "inspections.columns.inspection_id",
                    "missing: map an inspection id, or set `inspections.key` to the columns that together "
                    "identify one inspection",
                )
            )
    label = document.get("label")
    if isinstance(label, dict):
        rules = [name for name in ("severity", "score_at_least", "grades") if name in label]
        if len(rules) != 1:
            problems.append(
                Problem(
                    "label",
                    f"set exactly one of label.severity, label.score_at_least, label.grades (found {rules})",
                )
            )
    return problems


def present(document: Mapping[str, Any], dotted: str) -> bool:
    """The document holds the dotted key."""
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _family_problems(document: dict[str, Any]) -> list[Problem]:
    """A family the config asks for must have the columns and sections it is built from."""
    asked = (
        document.get("features", {}).get("families", list(DEFAULT_FAMILIES))
        if isinstance(document.get("features"), dict)
        else list(DEFAULT_FAMILIES)
    )
    if not isinstance(asked, list):
        return []
    registered = {family.name: family for family in _registry()}
    listed = ", ".join(registered)
    problems = []
    for name in asked:
        family = registered.get(name) if isinstance(name, str) else None
        if family is None:
            problems.append(Problem("features.families", f"unknown family {name!r}; use {listed}"))
        elif (need := family.needs(document)) is not None:
            problems.append(Problem("features.families", f"family {name!r} {need}"))
    columns = (
        document.get("inspections", {}).get("columns", {})
        if isinstance(document.get("inspections"), dict)
        else {}
    )
    columns = columns if isinstance(columns, dict) else {}
    area_field = (
        document.get("neighbourhood", {}).get("area_field")
        if isinstance(document.get("neighbourhood"), dict)
        else None
    )
    if isinstance(area_field, str) and area_field not in columns:
        problems.append(
            Problem("neighbourhood.area_field", f"{area_field!r} is not a mapped inspections column")
        )
    return problems


def reference_markdown() -> str:
    """The config reference table for docs/new-city.md."""
    lines = ["| key | type | required | default | meaning |", "|---|---|---|---|---|"]
    for key in config_keys():
        meaning = key.meaning.replace("|", "\\|")
        default = key.default.replace("|", "\\|")
        lines.append(
            f"| `{key.path}` | {key.type} | {'yes' if key.required else 'no'} | {default} | {meaning} |"
        )
    return "\n".join(lines) + "\n"
