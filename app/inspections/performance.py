"""How a model's issued daily lists did, measured on the outcomes posted back for their inspections.

Matching: each posted outcome of an in-scope inspection (the city config's inspection types) is
paired with the latest list the model issued for a date on or before the inspection's, at most
`LOOKBACK_DAYS` earlier, that ranks its establishment; the score and tier are the ones that list
gave. An outcome no such list ranks is counted as unmatched. Lists of one date with other filters or
lengths rank the same establishments with the same scores, so together they are that day's ranking.

By inspection week (Monday to Sunday) and over the whole range: AUC, precision in the top 10% and
20% of the week's matched inspections by score, the days-earlier estimate of the reordering
simulation and the share with a critical violation per tier, each with its count. The metric
functions are the backtest's (training/evaluate.py), so the figures compare with the model card's.
A figure the counts cannot support is null with a note saying why.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from app.inspections.daily import TIER_ORDER, DailyLists
from app.platform.errors import InvalidRequest, Problem
from app.platform.registry import LoadedModel
from app.platform.storage.list_scores import ListedScore
from training.serving import evaluate_scores, today_in, top_k_count

LOOKBACK_DAYS = 14  # as far ahead of its data as a daily list may be drawn (daily.MAX_DAYS_AFTER_DATA)
DEFAULT_WEEKS = 12
MAX_DAYS = 366
FEW_INSPECTIONS = 30  # below this, a week's figures are anecdotes: said so in its note
MATCHING = (
    "each posted outcome of an in-scope inspection is paired with the latest list the model issued for "
    f"a date on or before the inspection (at most {LOOKBACK_DAYS} days earlier) that ranks its "
    "establishment, with the score and tier that list gave"
)


def resolve_range(lists: DailyLists, city: str, since: date | None, until: date | None) -> tuple[date, date]:
    """The dates asked for; by default the DEFAULT_WEEKS weeks up to the newest posted outcome."""
    if until is None:
        newest = lists.repository().newest_posted_outcome(city)
        until = newest or today_in(lists.cities.city(city).data.config.timezone)
    if since is None:
        since = until - timedelta(weeks=DEFAULT_WEEKS) + timedelta(days=1)
    if since > until:
        raise InvalidRequest(
            f"since {since} is after until {until}",
            (Problem(("query", "since"), f"must be on or before until ({until})"),),
        )
    if (until - since).days + 1 > MAX_DAYS:
        raise InvalidRequest(
            f"{since} .. {until} is longer than {MAX_DAYS} days",
            (Problem(("query", "until"), f"at most {MAX_DAYS} days after since ({since})"),),
        )
    return since, until


def model_performance(
    lists: DailyLists, model: LoadedModel, since: date | None, until: date | None
) -> dict[str, Any]:
    """Blocking: the model's performance on posted outcomes dated in [since, until]."""
    city = model.city
    since, until = resolve_range(lists, city, since, until)
    repository = lists.repository()
    posted = repository.posted_outcomes(city, since, until)
    scores = repository.listed_scores(model.name, since - timedelta(days=LOOKBACK_DAYS), until)
    matched, counts = _match(lists, city, posted, scores)
    answer: dict[str, Any] = {
        "model": model.name,
        "city": city,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "matching": MATCHING,
        "outcomes": counts,
        "overall": None,
        "weeks": [],
    }
    if matched.empty:
        return answer
    answer["overall"] = _block(matched, since, until)
    week_start = matched["date"].dt.normalize() - pd.to_timedelta(matched["date"].dt.weekday, unit="D")
    for start, week in matched.groupby(week_start, sort=True):
        first = pd.Timestamp(start).date()
        last = first + timedelta(days=6)
        block = _block(week, first, last)
        answer["weeks"].append({"week_start": first.isoformat(), "week_end": last.isoformat(), **block})
    return answer


def _match(
    lists: DailyLists, city: str, posted: Sequence[Mapping[str, Any]], scores: Sequence[ListedScore]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The matched inspections (inspection_id, date, label, score, tier, version) and the counts."""
    data = lists.city_data(city)  # posted outcomes joined, with their labels
    config = data.config
    known = data.inspections.set_index("inspection_id", drop=False)
    by_day: dict[date, dict[str, ListedScore]] = {}
    for listed in scores:  # oldest list first: a later list of the same day is the one kept
        by_day.setdefault(listed.list_date, {})[listed.establishment_id] = listed
    days = sorted(by_day)
    rows = []
    out_of_scope = unmatched = 0
    for outcome in posted:
        inspection_id = str(outcome["inspection_id"])
        if inspection_id not in known.index:  # a result the city's config drops (no inspection took place)
            out_of_scope += 1
            continue
        inspection = known.loc[inspection_id]
        if isinstance(inspection, pd.DataFrame):
            inspection = inspection.iloc[-1]
        kind = inspection["inspection_type"]  # NA when the poster gave none
        in_scope = not config.inspection_types or (isinstance(kind, str) and kind in config.inspection_types)
        if not in_scope or not bool(inspection["has_outcome"]):
            out_of_scope += 1
            continue
        day = pd.Timestamp(inspection["date"]).date()
        found = _latest_listing(by_day, days, str(inspection["establishment_id"]), day)
        if found is None:
            unmatched += 1
            continue
        rows.append(
            {
                "inspection_id": inspection_id,
                "date": pd.Timestamp(day),
                "label": int(inspection["label"]),
                "score": found.score,
                "tier": found.tier,
                "model_version": found.model_version,
            }
        )
    counts = {
        "posted": len(posted),
        "out_of_scope": out_of_scope,
        "not_on_a_list": unmatched,
        "matched": len(rows),
    }
    columns = ["inspection_id", "date", "label", "score", "tier", "model_version"]
    return pd.DataFrame(rows, columns=columns), counts


def _latest_listing(
    by_day: Mapping[date, Mapping[str, ListedScore]], days: Sequence[date], establishment: str, day: date
) -> ListedScore | None:
    earliest = day - timedelta(days=LOOKBACK_DAYS)
    for position in range(bisect_right(days, day) - 1, -1, -1):
        if days[position] < earliest:
            return None
        listed = by_day[days[position]].get(establishment)
        if listed is not None:
            return listed
    return None


def _figure(value: Any, count: int, note: str | None = None) -> dict[str, Any]:
    number = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    return {"value": number, "count": count, "note": note}


def _block(frame: pd.DataFrame, first: date, last: date) -> dict[str, Any]:
    """The figures for the matched inspections of one period."""
    metrics = evaluate_scores(frame[["inspection_id", "date", "label", "score"]], first, last)
    n = len(frame)
    positives = int(frame["label"].sum())
    one_class = positives in (0, n)
    tiers = []
    for tier in sorted(TIER_ORDER, key=TIER_ORDER.__getitem__, reverse=True):
        labels = frame.loc[frame["tier"] == tier, "label"]
        tiers.append(
            {
                "tier": tier,
                "count": len(labels),
                "with_critical": int(labels.sum()),
                "share_with_critical": float(labels.mean()) if len(labels) else None,
            }
        )
    return {
        "inspections": n,
        "with_critical": positives,
        "model_versions": sorted(set(frame["model_version"])),
        "auc": _figure(
            metrics["auc"],
            n,
            "needs inspections both with and without a critical violation" if one_class else None,
        ),
        "precision_top_10": _figure(metrics["precision_at_10"], top_k_count(n, 10)),
        "precision_top_20": _figure(metrics["precision_at_20"], top_k_count(n, 20)),
        "days_earlier": _figure(
            metrics["days_earlier"],
            positives,
            "no inspection found a critical violation" if positives == 0 else None,
        ),
        "tiers": tiers,
        "note": f"only {n} inspection(s): too few to judge the model by" if n < FEW_INSPECTIONS else None,
    }
