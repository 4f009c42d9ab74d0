"""Read a city's files into canonical tables, as named by its config."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training.config import ConfigError, TableSource
from training.inspections.area_layers import area_of_points
from training.inspections.config import CityConfig, EventSource
from training.inspections.config_schema import INSPECTION_FIELDS
from training.inspections.frame_memo import remembered
from training.points import to_day, to_xyz


@dataclass(frozen=True)
class EventTable:
    """Point events with integer days and 3-D coordinates (km) for radius queries."""

    name: str
    day: np.ndarray  # int64 days since 1970-01-01, sorted ascending
    xyz: np.ndarray  # (n, 3) float64
    window_days: int
    radius_km: float


@dataclass(frozen=True)
class CityData:
    """Everything the features may look at, in canonical form."""

    config: CityConfig
    inspections: pd.DataFrame  # every inspection that took place (dropped results removed), any type
    licenses: pd.DataFrame | None
    events: tuple[EventTable, ...]
    weather: pd.Series | None  # daily maximum temperature indexed by int day
    notes: tuple[str, ...] = ()  # rows set aside while reading, with counts and examples
    # Dates of the rows set aside because their inspection id repeated an earlier row's, so an
    # evaluation window can count (and report) the ones that fell inside it.
    repeated_id_dates: pd.Series = field(default_factory=lambda: pd.Series([], dtype="datetime64[ns]"))
    family_data: Mapping[str, Any] = field(default_factory=dict)  # what a family's own `load` read

    @property
    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        dates = self._sorted_dates()
        if not len(dates):
            return pd.NaT, pd.NaT
        return pd.Timestamp(dates[0]), pd.Timestamp(dates[-1])

    def inspections_before(self, day: pd.Timestamp) -> int:
        """How many inspections took place before `day` (a list of `day` sees exactly those)."""
        dates = self._sorted_dates()
        return int(np.searchsorted(dates, day.to_datetime64(), side="left"))

    def _sorted_dates(self) -> np.ndarray:
        """The inspections' dates, sorted, without NaT: asked on every daily request, so derived
        once per data frame (a scan of every inspection took ~5 ms of the GIL a request)."""
        frame = self.inspections

        def make() -> np.ndarray:
            dates = frame["date"].to_numpy(dtype="datetime64[ns]")
            return np.sort(dates[~np.isnat(dates)])

        return remembered(frame, "sorted dates", make)


def read_table(source: TableSource, required: dict[str, str]) -> pd.DataFrame:
    """Read a CSV as text, checking that every mapped column exists.

    `required` maps a config key (for the error message) to a column name.
    """
    try:
        frame = pd.read_csv(source.path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise ConfigError(source.path, f"{source.key}.file", f"cannot read CSV: {error}") from None
    for key, column in required.items():
        if column not in frame.columns:
            raise ConfigError(
                source.path, key, f"column {column!r} not in {source.path.name} (has {list(frame.columns)})"
            )
    return frame


def parse_dates(values: pd.Series, date_format: str) -> pd.Series:
    """Parse with the config's format; unparseable values become NaT."""
    return pd.to_datetime(values.str.strip(), format=date_format, errors="coerce")


def parse_violation_codes(text: object, separator: str, pattern: re.Pattern[str]) -> list[int]:
    """Numeric codes in the portal's `N. TITLE - Comments: ... | N. ...` text, in order of appearance."""
    return [int(code) for code in violation_code_texts(text, separator, pattern) if code.isdigit()]


def violation_code_texts(text: object, separator: str, pattern: re.Pattern[str]) -> list[str]:
    """Codes as written (`4`, `04L`, `20-06`) in a violations text, in order of appearance."""
    if not isinstance(text, str) or not text.strip():
        return []
    codes = []
    for entry in text.split(separator):
        match = pattern.match(entry)
        if match:
            codes.append(match.group(1).strip())
    return codes


def code_class(code: str, config: CityConfig) -> str | None:
    """A violation code's class: a numeric range (`violations.severity`) first, then the first
    matching `violations.code_patterns` regex, else None (not counted)."""
    if code.isdigit() and (by_range := config.severity_by_code.get(int(code))) is not None:
        return by_range
    return next((name for name, pattern in config.code_patterns if pattern.search(code)), None)


def severity_counts(violations: pd.Series, config: CityConfig) -> pd.DataFrame:
    """Count violations of each severity class per row (unknown codes are ignored)."""
    counts = np.zeros((len(violations), 3), dtype="int64")
    classes = {"critical": 0, "serious": 1, "minor": 2}
    for row, text in enumerate(violations.to_numpy()):
        for code in violation_code_texts(text, config.entry_separator, config.code_pattern):
            severity = code_class(code, config)
            if severity is not None:
                counts[row, classes[severity]] += 1
    return pd.DataFrame(counts, columns=["n_critical", "n_serious", "n_minor"], index=violations.index)


def row_classes(frame: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Row mode: 0/1 per class for the one violation on each row; the flag decides where the city
    maps its value, else the code's range or pattern. A row with neither (no violation) counts 0."""
    flags = frame["violation_flag"].astype("string").str.strip()
    by_flag = flags.map(config.flag_classes).astype("object")
    codes = frame["violation_code"].astype("string").str.strip()
    unique = {code: code_class(code, config) for code in codes.dropna().unique()}
    by_code = codes.map(unique).astype("object")
    severity = by_flag.where(by_flag.notna(), by_code)
    return pd.DataFrame(
        {f"n_{name}": (severity == name).astype("int64") for name in ("critical", "serious", "minor")},
        index=frame.index,
    )


def inspection_ids(raw: pd.DataFrame, config: CityConfig) -> pd.Series:
    """Each row's inspection: the mapped id, or the `inspections.key` columns joined by " | "."""
    if not config.inspection_key:
        return raw[config.columns["inspection_id"]]
    parts = [raw[column].astype("string").str.strip().fillna("") for column in config.inspection_key]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined + " | " + part
    return joined


def _fields(raw: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """The canonical fields of each raw row (one inspection, or one violation in row mode)."""
    frame = pd.DataFrame(index=raw.index)
    for field_name in INSPECTION_FIELDS:
        column = config.columns.get(field_name)
        frame[field_name] = raw[column] if column in raw.columns else pd.Series(pd.NA, index=raw.index)
    if config.inspection_key:
        frame["inspection_id"] = inspection_ids(raw, config)
    for name, column in config.areas.items():
        frame[f"area_{name}"] = raw[column].astype("string").str.strip() if column in raw.columns else pd.NA
    for text_field in ("inspection_id", "establishment_id"):
        frame[text_field] = frame[text_field].astype("string").str.strip()
    frame["date"] = parse_dates(frame["date"].astype("string"), config.inspections.date_format)
    for number in ("latitude", "longitude", "score"):
        frame[number] = pd.to_numeric(frame[number], errors="coerce")
    for name, (boundaries, name_property) in config.area_layers.items():
        frame[f"area_{name}"] = area_of_points(
            boundaries, name_property, frame["latitude"], frame["longitude"]
        )
    for text_field in ("result", "inspection_type", "facility_type", "risk_category", "zip", "grade"):
        frame[text_field] = frame[text_field].astype("string").str.strip()
    return frame


def _group_violation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Row mode: one row per inspection; counts summed, every other field its first non-blank value."""
    grouped = frame.groupby("inspection_id", sort=False, dropna=False)
    counts = grouped[["n_critical", "n_serious", "n_minor"]].sum()
    fields = [c for c in frame.columns if c not in ("inspection_id", "n_critical", "n_serious", "n_minor")]
    first = grouped[fields].first()
    merged = pd.concat([first, counts], axis=1).reset_index()
    return merged.drop(columns=["violation_code", "violation_flag"])


def canonical_inspections(raw: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Rename the city's columns to canonical fields and derive counts, label and types.

    Fields the city does not map (or a file lacks) are present and empty. Rows whose date does not
    parse keep `date` as NaT; callers decide whether to drop or report them. In row mode (one row per
    violation) the rows of one inspection become one row here.
    """
    frame = _fields(raw, config)
    if config.row_per_violation:
        frame = _group_violation_rows(pd.concat([frame, row_classes(frame, config)], axis=1))
        has_outcome = frame["result"].notna().to_numpy() if "result" in config.columns else None
    else:
        counts = _counts_from_columns(raw, config) if config.violation_counts else None
        if counts is None:
            counts = severity_counts(frame["violations"], config)
        frame = pd.concat([frame, counts], axis=1)
        has_outcome = _has_outcome(raw, frame, config)
    frame["label"] = _labels(frame, config)
    frame["failed"] = frame["result"].isin(config.fail_results).astype("int8")
    frame["has_outcome"] = _label_known(frame, config, has_outcome)
    return frame


def _labels(frame: pd.DataFrame, config: CityConfig) -> pd.Series:
    """The label rule the config chose: a score at least N, a grade in a set, or N violations of a class."""
    if config.label_score_at_least is not None:
        return (frame["score"] >= config.label_score_at_least).astype("int8")
    if config.label_grades:
        return frame["grade"].isin(config.label_grades).astype("int8")
    return (frame[f"n_{config.label_severity}"] >= config.label_min_count).astype("int8")


def _label_known(frame: pd.DataFrame, config: CityConfig, has_outcome: np.ndarray | None) -> np.ndarray:
    """An inspection is an outcome when it happened and the label's input is there (no score yet:
    not an example, not history)."""
    known = np.ones(len(frame), dtype=bool) if has_outcome is None else np.array(has_outcome, dtype=bool)
    if config.label_score_at_least is not None:
        known &= frame["score"].notna().to_numpy()
    if config.label_grades:
        known &= frame["grade"].notna().to_numpy()
    return known


def _has_outcome(raw: pd.DataFrame, frame: pd.DataFrame, config: CityConfig) -> np.ndarray:
    """An upcoming inspection being scored has no outcome yet: blank result, or blank counts."""
    if config.violation_counts:
        columns = [c for c in config.violation_counts.values() if c in raw.columns]
        if not columns:
            return np.zeros(len(raw), dtype=bool)
        complete: np.ndarray = raw[columns].notna().all(axis=1).to_numpy()
        return complete
    if "result" in config.columns:
        resulted: np.ndarray = frame["result"].notna().to_numpy()
        return resulted
    return np.ones(len(raw), dtype=bool)


def _counts_from_columns(raw: pd.DataFrame, config: CityConfig) -> pd.DataFrame:
    """Counts mode: the city publishes a count per severity class instead of violation text."""
    counts = pd.DataFrame(index=raw.index)
    for severity in ("critical", "serious", "minor"):
        column = config.violation_counts.get(severity)
        values = pd.to_numeric(raw[column], errors="coerce") if column in raw.columns else 0
        counts[f"n_{severity}"] = pd.Series(values, index=raw.index).fillna(0).astype("int64")
    return counts


def load_inspections(config: CityConfig) -> tuple[pd.DataFrame, list[str]]:
    """Every inspection that took place, sorted by date then id, and notes on every row set aside.

    Rows an `exclude` rule names, rows with an unparseable date or no establishment id cannot be
    placed in time or history; an exact repeat of an inspection id keeps its first row; each is
    counted, with examples, never dropped silently. Repeats of an id that name another establishment,
    date or result are a ConfigError: the id does not identify an inspection.
    """
    frame, notes, _ = _load_inspections(config)
    return frame, notes


def _load_inspections(config: CityConfig) -> tuple[pd.DataFrame, list[str], pd.Series]:
    """`load_inspections`, plus the dates of the rows set aside as repeated inspection ids."""
    required = {f"inspections.columns.{k}": v for k, v in config.columns.items()}
    required |= {f"inspections.key[{i}]": column for i, column in enumerate(config.inspection_key)}
    required |= {f"exclude[{i}].column": rule.column for i, rule in enumerate(config.exclude)}
    required |= {f"areas.{name}": column for name, column in config.areas.items()}
    raw = read_table(config.inspections, required)
    raw, notes = _apply_exclude_rules(raw, config)
    _refuse_conflicting_ids(_fields(raw, config), config)
    frame = canonical_inspections(raw, config)
    if config.row_per_violation:
        notes.append(f"{len(raw)} violation rows grouped into {len(frame)} inspections")
    date_column = config.columns["date"]
    bad_date = frame["date"].isna()
    if bad_date.any():
        examples = ", ".join(repr(v) for v in _raw_values(raw, frame, bad_date, date_column))
        notes.append(
            f"{int(bad_date.sum())} rows with an unparseable {date_column!r} set aside (e.g. {examples})"
        )
    no_id = frame["establishment_id"].isna() | (frame["establishment_id"] == "")
    if no_id.any():
        lines = ", ".join(str(i + 2) for i in frame.index[no_id][:3])
        id_column = config.columns["establishment_id"]
        where = "inspections" if config.row_per_violation else "lines"
        notes.append(f"{int(no_id.sum())} rows without {id_column!r} set aside ({where} {lines})")
    frame = frame[~bad_date & ~no_id]
    dropped = frame["result"].isin(config.drop_results)
    if dropped.any():
        notes.append(
            f"{int(dropped.sum())} rows with results {list(config.drop_results)} set aside (no inspection)"
        )
    frame = frame[~dropped]
    duplicated = frame["inspection_id"].duplicated(keep="first")
    if duplicated.any():
        examples = ", ".join(frame.loc[duplicated, "inspection_id"].head(3).tolist())
        notes.append(
            f"{int(duplicated.sum())} repeated {_id_name(config)} values; first kept (e.g. {examples})"
        )
    repeated_dates = frame.loc[duplicated, "date"].reset_index(drop=True)
    frame = frame[~duplicated]
    frame = frame.sort_values(["date", "inspection_id"], kind="stable").reset_index(drop=True)
    return frame, notes, repeated_dates


def _id_name(config: CityConfig) -> str:
    if config.inspection_key:
        return "inspection key (" + ", ".join(repr(c) for c in config.inspection_key) + ")"
    return repr(config.columns["inspection_id"])


def _raw_values(raw: pd.DataFrame, frame: pd.DataFrame, mask: pd.Series, column: str) -> list[object]:
    if len(raw) == len(frame):
        return list(raw.loc[mask.to_numpy(), column].head(3))
    return list(frame.loc[mask, "inspection_id"].head(3))


def _apply_exclude_rules(raw: pd.DataFrame, config: CityConfig) -> tuple[pd.DataFrame, list[str]]:
    """Drop the rows each `[[exclude]]` rule names, with a note counting them."""
    notes = []
    for rule in config.exclude:
        hit = raw[rule.column].astype("string").str.strip().isin(rule.values).fillna(False).to_numpy()
        if hit.any():
            why = f" ({rule.reason})" if rule.reason else ""
            notes.append(f"{int(hit.sum())} rows with {rule.column!r} in {list(rule.values)} excluded{why}")
            raw = raw[~hit]
    return raw, notes


def _refuse_conflicting_ids(frame: pd.DataFrame, config: CityConfig) -> None:
    """A mapped inspection id that repeats with another establishment, date or result is not an
    inspection id (a row-per-violation file mapped as one row per inspection): refuse, do not guess."""
    ids = frame["inspection_id"]
    repeated = ids.duplicated(keep=False) & ids.notna()
    if not repeated.any():
        return
    rows = frame.loc[repeated, ["inspection_id", "establishment_id", "date", "result"]].astype("string")
    distinct = rows.drop_duplicates().groupby("inspection_id").size()
    conflicting_ids = distinct.index[distinct > 1]
    if len(conflicting_ids) == 0:
        return  # exact repeats: counted and the first kept, as before
    n_rows = int(rows["inspection_id"].isin(conflicting_ids).sum())
    example = conflicting_ids[0]
    sample = rows[rows["inspection_id"] == example].drop_duplicates().head(2)
    seen = " vs ".join(
        f"{r.establishment_id}/{str(r.date)[:10]}/{r.result}" for r in sample.itertuples(index=False)
    )
    column = config.columns.get("inspection_id", "inspections.key")
    raise ConfigError(
        config.path,
        "inspections.key" if config.inspection_key else "inspections.columns.inspection_id",
        f"{n_rows} rows share a {column!r} value with another establishment, date or result "
        f"({len(conflicting_ids)} values, e.g. {example!r}: {seen}), so {column!r} does not identify one "
        "inspection; if each row is one violation, set inspections.key to the columns that together "
        'identify an inspection (e.g. key = ["<establishment>", "<date>", "<inspection type>"]) and map '
        "violation_code / violation_flag",
    )


def load_licenses(config: CityConfig) -> pd.DataFrame | None:
    if config.licenses is None:
        return None
    source = config.licenses.source
    required = {f"licenses.columns.{k}": v for k, v in config.licenses.columns.items()}
    raw = read_table(source, required)
    columns = config.licenses.columns
    frame = pd.DataFrame(
        {
            "establishment_id": raw[columns["establishment_id"]].str.strip(),
            "account_id": raw[columns["account_id"]].str.strip(),
            "description": raw[columns["description"]].str.strip(),
            "term_start": parse_dates(raw[columns["term_start"]], source.date_format),
            "term_end": parse_dates(raw[columns["term_end"]], source.date_format)
            if "term_end" in columns
            else pd.NaT,
        }
    )
    return frame.dropna(subset=["establishment_id", "term_start"]).reset_index(drop=True)


def load_events(source: EventSource) -> EventTable:
    required = {
        f"{source.source.key}.date_column": source.date_column,
        f"{source.source.key}.latitude": source.latitude,
        f"{source.source.key}.longitude": source.longitude,
    }
    if source.exclude_column:
        required[f"{source.source.key}.exclude_column"] = source.exclude_column
    raw = read_table(source.source, required)
    if source.exclude_column:
        raw = raw[~raw[source.exclude_column].isin(source.exclude_values)]
    dates = parse_dates(raw[source.date_column], source.source.date_format)
    lat = pd.to_numeric(raw[source.latitude], errors="coerce")
    lon = pd.to_numeric(raw[source.longitude], errors="coerce")
    keep = (dates.notna() & lat.notna() & lon.notna()).to_numpy()
    day = to_day(dates[keep])
    order = np.argsort(day, kind="stable")
    return EventTable(
        name=source.name,
        day=day[order],
        xyz=to_xyz(lat[keep], lon[keep])[order],
        window_days=source.window_days,
        radius_km=source.radius_km,
    )


def load_weather(config: CityConfig) -> pd.Series | None:
    if config.weather is None:
        return None
    weather = config.weather
    raw = read_table(
        weather.source,
        {
            "weather.date_column": weather.date_column,
            "weather.temperature_max_column": weather.temperature_max_column,
        },
    )
    dates = parse_dates(raw[weather.date_column], weather.source.date_format)
    temperature = pd.to_numeric(raw[weather.temperature_max_column], errors="coerce")
    keep = dates.notna()
    return pd.Series(temperature[keep].to_numpy(), index=to_day(dates[keep])).groupby(level=0).mean()


def load_city(config: CityConfig) -> CityData:
    """Read every source the config's feature families use."""
    from training.inspections.features.registry import (
        REGISTRY,  # imported late: the families import this module
    )

    inspections, notes, repeated_dates = _load_inspections(config)
    families = set(config.families)
    loaded = {
        family.name: family.load(config)
        for family in REGISTRY
        if family.load is not None and family.name in families
    }
    return CityData(
        config=config,
        inspections=inspections,
        licenses=load_licenses(config),
        events=tuple(load_events(source) for source in config.environment)
        if "environment" in families
        else (),
        weather=load_weather(config) if "weather" in families else None,
        notes=tuple(notes),
        family_data=loaded,
        repeated_id_dates=repeated_dates,
    )


def data_files(config: CityConfig) -> list[Path]:
    """Every data file the config names (for the bundle's content hash): the inspections file, then
    each registered family's files, whether or not the family is switched on."""
    from training.inspections.features.registry import (
        REGISTRY,  # imported late: the families import this module
    )

    files = [config.inspections.path]
    for family in REGISTRY:
        files.extend(family.files(config))
    return files


def with_recorded_outcomes(data: CityData, recorded: pd.DataFrame) -> CityData:
    """`data` plus inspection outcomes recorded after its files were read (e.g. posted by inspectors).

    `recorded` has canonical columns inspection_id, establishment_id, date, result, violations and
    optionally inspection_type. An inspection id already in the data is not added twice. Location and
    descriptive fields come from the establishment's latest known inspection.
    """
    # Membership tested in Python over the (few) recorded ids: pandas' isin against a set of the
    # city's ~25,000 ids turned the set into an Arrow array on every call (0.17 s of a 0.25 s rebuild).
    known = set(data.inspections["inspection_id"].tolist())
    drop_results = set(data.config.drop_results)
    keep = [
        inspection_id not in known and result not in drop_results
        for inspection_id, result in zip(
            recorded["inspection_id"].astype("string").tolist(), recorded["result"].tolist(), strict=True
        )
    ]
    new = recorded[np.array(keep, dtype=bool)]
    if new.empty:
        return data
    frame = pd.DataFrame(
        {
            "inspection_id": new["inspection_id"].astype("string"),
            "establishment_id": new["establishment_id"].astype("string"),
            "date": pd.to_datetime(new["date"]),
            "inspection_type": new.get("inspection_type", pd.Series(pd.NA, index=new.index)).astype("string"),
            "result": new["result"].astype("string"),
            "violations": new["violations"],
        }
    )
    descriptive = ["name", "address", "zip", "latitude", "longitude", "facility_type", "risk_category"]
    descriptive += [f"area_{name}" for name in data.config.area_filters]
    latest = data.inspections.groupby("establishment_id").tail(1).set_index("establishment_id")
    for column in descriptive:
        frame[column] = frame["establishment_id"].map(latest[column]) if column in latest else pd.NA
    for absent in ("grade", "violation_code", "violation_flag"):
        frame[absent] = pd.NA  # an outcome posted to the service carries no score or grade
    frame["score"] = np.nan
    frame = pd.concat([frame, severity_counts(frame["violations"], data.config)], axis=1)
    frame["label"] = _labels(frame, data.config)
    frame["failed"] = frame["result"].isin(data.config.fail_results).astype("int8")
    # A city labelled by score or grade cannot label a posted outcome: it is not an example then.
    frame["has_outcome"] = _label_known(frame, data.config, None)
    inspections = pd.concat([data.inspections, frame[data.inspections.columns]], ignore_index=True)
    inspections = inspections.sort_values(["date", "inspection_id"], kind="stable").reset_index(drop=True)
    return dataclasses.replace(data, inspections=inspections)
