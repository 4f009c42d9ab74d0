"""The daily list's reasons in an inspector's words: one reason per group of correlated features.

A model's contributions are per feature, and features that measure the same thing (a dozen about the
establishment's own history, forty about its neighbourhood) often pull opposite ways: one "raises"
and one "lowers" the risk for the same history, which nobody can act on. So contributions are added
up per group, each group gives at most one reason with one net direction, and its text is built
from facts an inspector can check ("Failed its last inspection (2014-08-28), 4 critical
violations"), taken from the members that push the way the group does. The numbers stay beside the
words for the model team: `contribution` is the group's sum and `members` lists each feature with
its value and contribution.

A feature's group follows from its feature family (training's registry), so a new family gets a
group of its own without a line here; `GROUP_OF_FAMILY` only merges families that measure one thing.
"""

from __future__ import annotations

import base64
import calendar
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from app.inspections.ranked_rows import PendingReasons
from app.platform.registry import LoadedModel
from app.scoring.explain import TOP_REASONS
from app.scoring.types import FeatureLayout, RecordBatch
from training.serving import feature_family

# Families that describe one thing to an inspector: the place's surroundings, the time of year.
GROUP_OF_FAMILY = {
    "history": "history",
    "establishment": "establishment",
    "neighbourhood": "neighbourhood",
    "environment": "neighbourhood",
    "area": "neighbourhood",
    "calendar": "season",
    "weather": "season",
}
GROUP_TITLES = {
    "history": "Its inspection history",
    "establishment": "The establishment",
    "neighbourhood": "Its neighbourhood",
    "season": "The time of year",
}
# The largest members listed one by one, the rest summed: a full list (7,347 rows) with every member
# of every reason weighed ~32 MB to store and hash, against ~7 MB before grouping.
MEMBERS_LISTED = 6
FACTS_PER_REASON = 2  # an inspector reads the two strongest; the numbers are in `members`


@dataclass(frozen=True)
class Groups:
    """A layout's features by group: `names` in order of first appearance, each one's `members`."""

    names: tuple[str, ...]
    members: tuple[tuple[int, ...], ...]
    group_of: tuple[int, ...]  # per feature, its group's position in `names`
    arrays: tuple[np.ndarray, ...]  # `members` as index arrays


@lru_cache(maxsize=16)
def feature_groups(layout: FeatureLayout) -> Groups:
    """Each feature's group, in order of first appearance in the layout."""
    group_of: list[str] = []
    for name in layout.names:
        family = feature_family(name) or name
        group_of.append(GROUP_OF_FAMILY.get(family, family))
    names = tuple(dict.fromkeys(group_of))
    members = tuple(tuple(j for j, g in enumerate(group_of) if g == group) for group in names)
    arrays = tuple(np.asarray(indices, dtype=np.intp) for indices in members)
    return Groups(names, members, tuple(names.index(g) for g in group_of), arrays)


@dataclass(frozen=True)
class Words:
    """The city's words for what its label counts (`[violations.names]`)."""

    critical: str = "critical"
    serious: str = "serious"
    minor: str = "minor"

    @classmethod
    def from_names(cls, names: Mapping[str, str]) -> Words:
        return cls(**{k: v for k, v in names.items() if k in ("critical", "serious", "minor")})

    def as_list(self) -> list[str]:
        return [self.critical, self.serious, self.minor]


@dataclass(frozen=True)
class Row:
    """What facts about one establishment are made of: its feature values and its last inspection."""

    values: Mapping[str, float | str | None]
    last_date: str | None
    last_result: str | None
    words: Words


@dataclass(frozen=True)
class ScoredInspections:
    """`score_inspections`' answer, column by column (a daily list assigns them to its frame whole)."""

    scores: np.ndarray  # float64
    tiers: list[str]
    reasons: PendingReasons  # as `worded_reasons` reads them, row by row


def score_inspections(
    model: LoadedModel, batch: RecordBatch, severity_names: Mapping[str, str]
) -> ScoredInspections:
    """Per record: score, tier and its reasons *pending*: which groups
    give them (up to TOP_REASONS, largest net contribution first) and the record's inputs packed.

    A ranked day holds every establishment in scope (7,347 for Chicago) but a list issues a few
    dozen: `worded_reasons` writes the words and member lists for those rows only, when the list is
    issued. Built eagerly for every row they cost more than the rest of the ranking (measured in
    bench/README.md). A row's pending form is plain JSON (`PendingReasons.row`), the same bits
    whichever process computed it."""
    scored = model.scorer.score(batch)
    layout = model.layout
    groups = feature_groups(layout)
    contributions = np.nan_to_num(scored.contributions, nan=0.0)
    # Column sums, not a matrix product: BLAS may add in another order with another thread count,
    # and a list ranked in a list process must equal one ranked in the server's thread bit for bit.
    sums = np.column_stack([contributions[:, list(members)].sum(axis=1) for members in groups.members])
    order = np.argsort(-np.abs(sums), axis=1, kind="stable")[:, :TOP_REASONS]
    chosen = np.take_along_axis(sums, order, axis=1)
    packed = np.ascontiguousarray(np.concatenate([batch.numeric, contributions], axis=1))
    pending = PendingReasons(
        group_names=groups.names,
        groups=order,
        totals=chosen,
        packed=packed,
        categories=tuple(pa.array(values, type=pa.string()) for values in batch.categorical),
        words=tuple(Words.from_names(severity_names).as_list()),
    )
    tiers = model.tiers.label(scored.scores)
    return ScoredInspections(scores=np.asarray(scored.scores, dtype=np.float64), tiers=tiers, reasons=pending)


def worded_reasons(row: dict[str, Any], layout: FeatureLayout) -> list[dict[str, Any]]:
    """A ranked row's reasons in words, with their members (see `score_inspections`). Kept in the
    row, so that the day's next lists (another filter, the page after the API) word it once."""
    pending = row["reasons"]
    if isinstance(pending, list):  # already worded
        return pending
    groups = feature_groups(layout)
    width = len(layout.numeric)
    packed = np.frombuffer(base64.b64decode(pending["inputs"]), dtype=np.float64)
    numeric, contributions = packed[:width].tolist(), packed[width:]
    categories = pending["categories"]
    # Each feature's value as answered (NaN as None, -0.0 as 0.0), in layout order.
    values = [
        categories[k] if is_category else (None if (v := numeric[k]) != v else v + 0.0)
        for is_category, k in _sources(layout)
    ]
    by_name = dict(zip(layout.names, values, strict=True))
    last_date, last_result = row.get("last_inspection_date"), row.get("last_result")
    facts_row = Row(by_name, last_date, last_result, Words(*pending["words"]))
    reasons = []
    for group, total in pending["groups"]:
        indices = groups.arrays[groups.names.index(group)]
        mine = contributions[indices]
        nonzero = mine != 0.0
        # Largest magnitude first; a stable sort keeps the earlier feature first on a tie.
        order = np.argsort(-np.abs(mine[nonzero]), kind="stable")
        members = indices[nonzero][order].tolist()
        member_contributions = mine[nonzero][order].tolist()
        reasons.append(
            _group_reason(group, total, members, member_contributions, values, facts_row, layout.names)
        )
    # Replacing the value is atomic: another thread reads the pending form or these same words.
    row["reasons"] = reasons
    return reasons


@lru_cache(maxsize=16)
def _sources(layout: FeatureLayout) -> tuple[tuple[bool, int], ...]:
    """Per feature: whether it is a category, and its position among the categories or numbers."""
    return tuple(
        (True, layout.category_of[j]) if j in layout.category_of else (False, layout.numeric_column[j])
        for j in range(len(layout.names))
    )


def _group_reason(
    group: str,
    total: float,
    members: list[int],
    contributions: list[float],
    values: list[Any],
    row: Row,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """One group's reason; `members` are its features with a non-zero contribution, largest first,
    and `contributions` theirs, in the same order."""
    # The facts come from the members pushing the way the group does: the text never argues
    # against its own direction.
    raises = total > 0
    agreeing = (names[j] for j, c in zip(members, contributions, strict=True) if (c > 0) == raises)
    facts = _facts(agreeing, row)
    title = GROUP_TITLES.get(group, group.replace("_", " ").capitalize())
    text = f"{title} {'raises' if raises else 'lowers'} the risk: {'; '.join(facts)}"
    listed = zip(members[:MEMBERS_LISTED], contributions[:MEMBERS_LISTED], strict=True)
    rest = contributions[MEMBERS_LISTED:]
    return {
        "feature": group,
        "value": None,
        "contribution": total,
        "text": text,
        "members": [{"feature": names[j], "value": values[j], "contribution": c} for j, c in listed],
        "other_members": {"count": len(rest), "contribution": math.fsum(rest)},
    }


# --- facts ---------------------------------------------------------------------------------------

Fact = Callable[[re.Match[str], Row], str | None]
FACTS: list[tuple[re.Pattern[str], Fact]] = []


OWN_VALUE: set[Fact] = set()  # facts that read only their own feature's value


def fact(pattern: str, own_value: bool = True) -> Callable[[Fact], Fact]:
    """Register the fact for the feature names matching `pattern` (matched whole); `own_value`
    False for a fact that reads other features or the last inspection too."""

    def register(function: Fact) -> Fact:
        FACTS.append((re.compile(pattern), function))
        if own_value:
            OWN_VALUE.add(function)
        return function

    return register


def _facts(features: Iterable[str], row: Row) -> list[str]:
    """Up to FACTS_PER_REASON distinct facts, from the features in the order given."""
    found: list[str] = []
    for name in features:
        text = _fact(name, row)
        if text and text not in found:
            found.append(text)
        if len(found) == FACTS_PER_REASON:
            break
    return found


def _fact(name: str, row: Row) -> str | None:
    found = _fact_for(name)
    if found is None:
        return _plain(name, row.values.get(name))
    function, match = found
    if function not in OWN_VALUE:
        return function(match, row)
    return _own_fact(name, row.values[name], row.words)


@lru_cache(maxsize=65_536)
def _own_fact(name: str, value: float | str | None, words: Words) -> str | None:
    """A fact that follows from its own feature's value alone, built once per (feature, value): an
    area's share is the same sentence for every place in it."""
    found = _fact_for(name)
    assert found is not None
    function, match = found
    return function(match, Row({name: value}, None, None, words))


@lru_cache(maxsize=1024)
def _fact_for(name: str) -> tuple[Fact, re.Match[str]] | None:
    for pattern, function in FACTS:
        match = pattern.fullmatch(name)
        if match:
            return function, match
    return None


def _plain(name: str, value: float | str | None) -> str:
    """A feature without a fact of its own: its name in words and its value."""
    words = name.replace("_", " ")
    if value is None:
        return f"{words}: not known"
    return f"{words}: {_number(value) if isinstance(value, float) else value}"


def _number(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _count(n: float, noun: str) -> str:
    return f"{n:.0f} {noun}" + ("" if n == 1 else "s")


def _percent(share: float) -> str:
    return f"{100 * share:.0f}%"


def _last_inspection(row: Row) -> str:
    """One clause about the previous inspection: its result and date, and the violations found."""
    values, words = row.values, row.words
    when = f" ({row.last_date})" if row.last_date else ""
    failed = values.get("prev_failed")
    if failed == 1.0:
        head = f"Failed its last inspection{when}"
    elif row.last_result:
        head = f"Last inspection{when}: {row.last_result}"
    else:
        head = f"Last inspection{when}"
    counts = []
    for feature, word in (("prev_critical", words.critical), ("prev_serious", words.serious)):
        n = values.get(feature)
        # None found of the label's class is a fact worth saying; of the next class, only a count.
        if isinstance(n, float) and (n > 0 or feature == "prev_critical"):
            counts.append(_count(n, f"{word} violation"))
    return ", ".join([head, *counts])


@fact(r"prev_(failed|critical|serious|minor)|violations_decayed", own_value=False)
def _previous(match: re.Match[str], row: Row) -> str | None:
    if row.values.get("first_inspection") == 1.0:
        return "No earlier inspection on record"
    return _last_inspection(row)


@fact(r"first_inspection", own_value=False)
def _first(match: re.Match[str], row: Row) -> str | None:
    if row.values.get("first_inspection") == 1.0:
        return "No earlier inspection on record"
    prior = row.values.get("prior_inspections")
    return _count(prior, "earlier inspection") + " on record" if isinstance(prior, float) else None


@fact(r"prior_inspections", own_value=False)
def _prior(match: re.Match[str], row: Row) -> str | None:
    prior = row.values.get("prior_inspections")
    return _count(prior, "earlier inspection") + " on record" if isinstance(prior, float) else None


@fact(r"days_since_last", own_value=False)
def _since(match: re.Match[str], row: Row) -> str | None:
    days = row.values.get("days_since_last")
    if not isinstance(days, float):
        return "No earlier inspection on record"
    months = round(days / 30.44)
    if months >= 2:
        return f"Not inspected for {months} months"
    return f"Last inspected {_count(days, 'day')} ago"


@fact(r"(past_critical_inspections|critical_decayed)", own_value=False)
def _past_critical(match: re.Match[str], row: Row) -> str | None:
    n, prior = row.values.get("past_critical_inspections"), row.values.get("prior_inspections")
    if not isinstance(n, float) or not isinstance(prior, float):
        return None
    recent = " (recent ones count more)" if match[1] == "critical_decayed" else ""
    return f"{n:.0f} of {_count(prior, 'earlier inspection')} found a {row.words.critical} violation{recent}"


@fact(r"(past_fails|fails_decayed)", own_value=False)
def _past_fails(match: re.Match[str], row: Row) -> str | None:
    n, prior = row.values.get("past_fails"), row.values.get("prior_inspections")
    if not isinstance(n, float) or not isinstance(prior, float):
        return None
    recent = " (recent ones count more)" if match[1] == "fails_decayed" else ""
    return f"Failed {n:.0f} of {_count(prior, 'earlier inspection')}{recent}"


def _critical_share(share: object, where: str, row: Row) -> str:
    """What share of the inspections `where` ("within 1 km in the last 30 days") found a critical one."""
    if not isinstance(share, float):
        return f"No inspections {where}"
    return f"{_percent(share)} of inspections {where} found a {row.words.critical} violation"


def _inspections(n: object, where: str) -> str:
    return f"{_count(n, 'inspection') if isinstance(n, float) else 'No inspections'} {where}"


@fact(r"nearby_critical_share_(\d+)d_([\d.]+)km")
def _nearby_share(match: re.Match[str], row: Row) -> str | None:
    return _critical_share(row.values.get(match[0]), f"within {match[2]} km in the last {match[1]} days", row)


@fact(r"nearby_inspections_(\d+)d_([\d.]+)km")
def _nearby_count(match: re.Match[str], row: Row) -> str | None:
    return _inspections(row.values.get(match[0]), f"within {match[2]} km in the last {match[1]} days")


@fact(r"nearest(\d+)_(\d+)d_(critical_share|fail_share|mean_violations|mean_km)")
def _nearest(match: re.Match[str], row: Row) -> str | None:
    value = row.values.get(match[0])
    group = f"the {match[1]} nearest inspections in the last {match[2]} days"
    if not isinstance(value, float):
        return f"No inspections nearby in the last {match[2]} days"
    kind = match[3]
    if kind == "critical_share":
        return f"{_percent(value)} of {group} found a {row.words.critical} violation"
    if kind == "fail_share":
        return f"{_percent(value)} of {group} failed"
    if kind == "mean_violations":
        return f"{group.capitalize()} found {value:.1f} violations on average"
    return f"{group.capitalize()} were {value:.1f} km away on average"


@fact(r"area_critical_share_(\d+)d")
def _area_share(match: re.Match[str], row: Row) -> str | None:
    return _critical_share(row.values.get(match[0]), f"in its area in the last {match[1]} days", row)


@fact(r"area_inspections_(\d+)d")
def _area_count(match: re.Match[str], row: Row) -> str | None:
    return _inspections(row.values.get(match[0]), f"in its area in the last {match[1]} days")


@fact(r"(\w+)_per_km2_(\d+)d_([\d.]+)km")
def _events(match: re.Match[str], row: Row) -> str | None:
    value = row.values.get(match[0])
    what = match[1].replace("_", " ")
    density = f"{value:.0f}" if isinstance(value, float) else "not known"
    return f"{what} per km² within {match[3]} km in the last {match[2]} days: {density}"


@fact(r"facility_type")
def _facility(match: re.Match[str], row: Row) -> str | None:
    return f"Facility type: {row.values.get('facility_type') or 'not known'}"


@fact(r"risk_category")
def _risk(match: re.Match[str], row: Row) -> str | None:
    return f"The city's risk category: {row.values.get('risk_category') or 'not known'}"


@fact(r"years_licensed")
def _licensed(match: re.Match[str], row: Row) -> str | None:
    years = row.values.get("years_licensed")
    if not isinstance(years, float):
        return "No licence on record"
    return "Licensed for less than a year" if years < 1 else f"Licensed for {_count(years, 'year')}"


@fact(r"license_types_held")
def _licence_types(match: re.Match[str], row: Row) -> str | None:
    n = row.values.get("license_types_held")
    return f"Its business account held {_count(n, 'licence type')}" if isinstance(n, float) else None


@fact(r"license_(\w+)")
def _licence(match: re.Match[str], row: Row) -> str | None:
    held = row.values.get(match[0])
    what = match[1].replace("_", " ")
    if held == 1.0:
        return f"Its business account held a {what} licence"
    return f"No {what} licence on its business account" if held == 0.0 else None


@fact(r"month")
def _month(match: re.Match[str], row: Row) -> str | None:
    month = row.values.get("month")
    return f"Inspection in {calendar.month_name[int(month)]}" if isinstance(month, float) else None


@fact(r"day_of_week")
def _weekday(match: re.Match[str], row: Row) -> str | None:
    day = row.values.get("day_of_week")
    return f"Inspection on a {calendar.day_name[int(day)]}" if isinstance(day, float) else None


@fact(r"temperature_max_mean_(\d+)d")
def _temperature(match: re.Match[str], row: Row) -> str | None:
    value = row.values.get(match[0])
    if not isinstance(value, float):
        return None
    return f"Mean daily high of {value:.0f}° over the {match[1]} days before"
