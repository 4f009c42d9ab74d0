"""What a clinician reads: the tier's recommended action and the reasons in plain words, for the
Lead Safe `risk_score_notes` and the CDS Hooks card (app/hospitals/cds_cards.py).

The actions restate the CDC/Illinois practice a clinic already follows (test, and for a high risk ask
about the home and refer it for an inspection); the model adds who to act on first, not new medicine.
"""

from __future__ import annotations

import math
from functools import lru_cache

from app.hospitals.lead_risk import HOME_AREA, HOME_AREA_DESCRIPTION, LeadResult, Reason

ACTIONS = {
    "high": "High risk: order a blood lead test at this visit and refer the home for a lead inspection "
    "(Chicago: call 311)",
    "medium": "Medium risk: order a blood lead test at this visit if none in the last 6 months; ask about "
    "peeling paint and renovation at home",
    "low": "Low risk: follow the routine blood lead testing schedule (ages 1 and 2)",
}
KNOWN_CASE = "A blood lead result at or above 5 µg/dL is already on record: follow up on that result"
EXPECTED_CHILD = "Scored for the expected child at birth, from the home's place and history"
SYNTHETIC = "Model validated on synthetic outcomes only: not for clinical decisions"
AREA_RATE = "the home area's real lead-poisoning rate: {rate:.1f}% of tested children in {year}"
# The area-outcome features in plain words: their values are logs of ratios to the city's rate.
AREA_FACTS = {
    "area_outcome_log_ratio": "the home area's real lead-poisoning rate in the latest published year",
    "area_outcome_log_ratio_mean": "the home area's real lead-poisoning rate over recent published years",
    "area_outcome_trend": "the yearly trend of the home area's real rate against the city's",
    "area_outcome_se_ratio": "the uncertainty of the home area's latest real rate",
    HOME_AREA: HOME_AREA_DESCRIPTION,
}
# The housing-age index in words: its weights are the shares of homes of each construction period found
# with lead-based paint hazards (HUD's national survey, as Washington State DOH's method uses them), so
# the index is the share of the tract's homes expected to have such hazards, in percent.
HOUSING_INDEX = "tract_housing_risk_index"
# Features whose plain words are not their description's.
PLAIN_FACTS = AREA_FACTS | {
    HOUSING_INDEX: "share of the tract's homes estimated to have lead paint hazards (by their age)"
}


@lru_cache(maxsize=1024)
def _value_layout(name: str) -> str:
    """How a feature's value is written ("{:.0%}", "${:,.0f}", ...), by its name: worked out once
    per feature name (a model's own, never a request's)."""
    if "share" in name or "_pct_" in name:
        return "{:.0%}"
    if "income" in name:
        return "${:,.0f}"
    if name == "age_days":
        return "{:.0f} days"
    return "{:.3g}"


@lru_cache(maxsize=1024)
def _fact(description: str) -> str:
    # Descriptions carry their source in brackets; the clinician needs the fact, not the citation.
    return description.split(" (")[0]


def _value(feature: str, value: float | None) -> str:
    if value is None:
        return "not known"
    if feature in ("area_outcome_log_ratio", "area_outcome_log_ratio_mean"):
        return f"{math.exp(value):.1f}× the city's"
    if feature == "area_outcome_trend":
        return f"{math.exp(value) - 1:+.0%} a year"
    if feature == "area_outcome_se_ratio":
        return f"{value:.2f}× the city's rate"
    if feature == HOUSING_INDEX:
        return f"{value / 100:.0%}"
    return _value_layout(feature).format(value)


def _plain_fact(reason: Reason) -> str:
    return PLAIN_FACTS.get(reason.feature) or _fact(reason.description)


def plain_reason(reason: Reason) -> str:
    """E.g. "raises risk: share of the tract's housing units built before 1940 is 44% (training
    average 30%)": a reason raises or lowers the risk against the model's average child, so the
    average is said where the model has it (else a value below a clinician's idea of "typical" reads
    as a contradiction of "raises")."""
    direction = "raises risk" if reason.contribution > 0 else "lowers risk"
    if reason.feature == HOME_AREA:  # the area's real rate and census features, one reason
        if reason.value is None:
            return f"{direction}: {HOME_AREA_DESCRIPTION}"
        recent = f"over recent published years ({math.exp(reason.value):.1f}× the city's)"
        return f"{direction}: the home area's real lead-poisoning rate {recent} and census profile"
    said = f"{direction}: {_plain_fact(reason)} is {_value(reason.feature, reason.value)}"
    if reason.value is None or reason.average is None:
        return said
    return f"{said} (training average {_value(reason.feature, reason.average)})"


def driver(result: LeadResult) -> str | None:
    """One short clause on what drove the score: the largest reason, and the home area's recent real
    rate (with its year) when an area-outcome feature is among the reasons."""
    if not result.reasons:
        return None
    top = result.reasons[0]
    moved = "Raised" if top.contribution > 0 else "Lowered"
    area_reason = any(reason.feature in AREA_FACTS for reason in result.reasons)
    if not area_reason or result.area_rate is None:
        return f"{moved} mostly by {_plain_fact(top)}"
    year, rate = result.area_rate
    if top.feature in AREA_FACTS:
        return f"{moved} mostly by {AREA_RATE.format(rate=rate, year=year)}"
    return f"{moved} mostly by {_plain_fact(top)}, with {AREA_RATE.format(rate=rate, year=year)}"


def notes(result: LeadResult, elevated_lab: bool, expected: bool) -> list[str]:
    lines = [ACTIONS.get(result.tier, ACTIONS["low"])]
    if elevated_lab:
        lines.insert(0, KNOWN_CASE)
    if expected:
        lines.append(EXPECTED_CHILD)
    clause = driver(result)
    if clause is not None:
        lines.append(clause)
    lines += [plain_reason(reason) for reason in result.reasons]
    if result.model.manifest.get("synthetic"):
        lines.append(SYNTHETIC)
    return lines


def risk_score_notes(result: LeadResult, elevated_lab: bool, expected: bool) -> str:
    """The contract's notes: one line per note, semicolon-separated (so no semicolons inside)."""
    return "; ".join(line.replace(";", ",") for line in notes(result, elevated_lab, expected))
