"""The inspections domain's request and response shapes, as they appear in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.platform.schemas import IsoDate
from app.scoring.schemas import EXAMPLE_REASONS, FeatureValue, Reason, ScoredRecord, TierName


class Establishment(BaseModel):
    establishment_id: str
    name: str | None
    address: str | None


class EstablishmentRisk(ScoredRecord):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "city": "chicago",
                    "establishment": {"establishment_id": "1932", "name": "...", "address": "..."},
                    "date": "2014-08-30",
                    "data_until": "2014-08-29",
                    "model": "chicago-food-inspections",
                    "version": "2014-08-29-d443bf14",
                    "score": 0.21,
                    "tier": "medium",
                    "reasons": EXAMPLE_REASONS,
                    "features": {"prior_inspections": 4.0, "facility_type": "Restaurant"},
                }
            ]
        }
    )

    city: str
    establishment: Establishment
    date: str = Field(description="The inspection date the features are computed for")
    data_until: str = Field(description="Latest inspection date in the city's data")
    model: str
    version: str
    features: dict[str, FeatureValue]


class ReasonMember(BaseModel):
    """One feature of a grouped reason, with the numbers the model team reads."""

    feature: str = Field(examples=["prev_critical"])
    value: FeatureValue = Field(description="The input value (null when missing)", examples=[4.0])
    contribution: float = Field(description="Signed log-odds; > 0 raises the risk", examples=[0.41])


class OtherMembers(BaseModel):
    count: int = Field(description="Members with a non-zero contribution not listed", examples=[9])
    contribution: float = Field(description="Their summed contribution", examples=[0.04])


class GroupedReason(Reason):
    """A reason for a group of correlated features (the establishment's history, its neighbourhood,
    the establishment, the time of year), in plain words with one net direction.

    `feature` names the group, `value` is null (a group has no single value), `contribution` is the
    sum of its members' contributions, `members` lists the (up to 6) member features with the largest
    contributions, largest magnitude first, and `other_members` sums the rest, so that
    `contribution` = the members' contributions + `other_members.contribution`."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "feature": "history",
                    "value": None,
                    "contribution": 1.68,
                    "text": "Its inspection history raises the risk: Failed its last inspection "
                    "(2014-08-28), 3 critical violations, 5 serious violations; 1 of 1 earlier "
                    "inspection found a critical violation",
                    "members": [
                        {"feature": "prev_failed", "value": 1.0, "contribution": 0.52},
                        {"feature": "days_since_last", "value": 420.0, "contribution": -0.05},
                    ],
                    "other_members": {"count": 0, "contribution": 0.0},
                }
            ]
        }
    )

    members: list[ReasonMember]
    other_members: OtherMembers


class ListedEstablishment(BaseModel):
    rank: int = Field(examples=[1])
    establishment_id: str = Field(examples=["2298459"])
    name: str | None = Field(examples=["SAIMAI THAI"])
    address: str | None = Field(examples=["338 W ARMITAGE AVE"])
    zip: str | None = Field(examples=["60614"])
    latitude: float | None = Field(examples=[41.918])
    longitude: float | None = Field(examples=[-87.638])
    facility_type: str | None = Field(examples=["Restaurant"])
    risk_category: str | None = Field(examples=["Risk 1 (High)"])
    community_area: str | None = Field(examples=["LINCOLN PARK"])
    score: float = Field(description="Probability of a critical violation", examples=[0.41])
    tier: TierName
    reasons: list[GroupedReason] = Field(
        description="Up to 3 reasons, one per group of correlated features, largest net contribution first"
    )
    last_inspection_date: str | None = Field(examples=["2013-09-12"])
    last_result: str | None = Field(examples=["Pass w/ Conditions"])


class ListStaleness(BaseModel):
    """How old the newest inspection outcome behind a daily list is, counted to today (UTC)."""

    newest_outcome: str = Field(examples=["2014-08-29"])
    age_days: int = Field(ge=0, examples=[3])
    max_age_days: int = Field(description="CIVICRISK_OUTCOMES_MAX_AGE_DAYS", examples=[14])
    stale: bool = Field(description="age_days > max_age_days")
    warning: str | None = Field(description="When stale: what it means and what to do")


class DailyList(BaseModel):
    """A list as issued and stored: GET /v1/inspections/lists/{id} returns exactly this."""

    list_id: int = Field(examples=[17])
    city: str = Field(examples=["chicago"])
    city_display_name: str | None = Field(default=None, examples=["Chicago"])  # [city].display_name
    date: str = Field(examples=["2014-08-30"])
    model: dict[str, str] = Field(
        examples=[{"name": "chicago-food-inspections", "version": "2014-08-29-d443bf14"}]
    )
    parameters: dict[str, Any]
    issued_at: str
    rows: list[ListedEstablishment]
    staleness: ListStaleness | None = Field(
        default=None, description="GET /v1/inspections/{city}/daily only: how old its newest outcome is"
    )


class OutcomeIn(BaseModel):
    """One inspection's result, in the city's own format."""

    model_config = ConfigDict(extra="forbid")

    inspection_id: str = Field(min_length=1, max_length=64, examples=["1496240"])
    establishment_id: str = Field(min_length=1, max_length=64, examples=["2298459"])
    date: IsoDate = Field(examples=["2014-09-02"])
    result: str = Field(min_length=1, max_length=128, examples=["Fail"])
    inspection_type: str | None = Field(default=None, max_length=128, examples=["Canvass"])
    violations: str | None = Field(
        default=None,
        max_length=20_000,
        examples=["2. FACILITIES TO MAINTAIN PROPER TEMPERATURE - Comments: | 34. FLOORS - Comments: "],
    )


class OutcomesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=1000)


class OutcomesRecorded(BaseModel):
    created: list[str] = Field(description="Inspection ids stored by this request")
    already_recorded: list[str] = Field(description="Ids stored before; left unchanged (idempotent)")


class Figure(BaseModel):
    value: float | None = Field(description="null when the counts cannot support it (see note)")
    count: int = Field(description="How many inspections the figure rests on")
    note: str | None = None


class TierCalibration(BaseModel):
    tier: TierName
    count: int
    with_critical: int
    share_with_critical: float | None


class PeriodPerformance(BaseModel):
    inspections: int = Field(description="Matched inspections with a posted outcome")
    with_critical: int
    model_versions: list[str]
    auc: Figure
    precision_top_10: Figure = Field(description="Share with a critical violation in the top 10% by score")
    precision_top_20: Figure
    days_earlier: Figure = Field(
        description="Mean days earlier a critical violation would have been found, had the period's "
        "inspections been made in score order (count: inspections that found one)"
    )
    tiers: list[TierCalibration]
    note: str | None = Field(description="Said when the period has too few inspections to judge by")


class WeekPerformance(PeriodPerformance):
    week_start: str = Field(examples=["2014-09-01"])
    week_end: str = Field(examples=["2014-09-07"])


class ModelPerformance(BaseModel):
    """How a model's issued daily lists did on the outcomes posted for their inspections."""

    model: str
    city: str
    since: str
    until: str
    matching: str = Field(description="How outcomes are paired with the lists that ranked them")
    outcomes: dict[str, int] = Field(description="posted, out_of_scope, not_on_a_list, matched")
    overall: PeriodPerformance | None
    weeks: list[WeekPerformance]


class RouteStop(BaseModel):
    stop: int = Field(description="Visiting order, from 1", examples=[1])
    rank: int = Field(description="The establishment's rank in the list the plan came from", examples=[3])
    establishment_id: str = Field(examples=["2298459"])
    name: str | None
    address: str | None
    zip: str | None
    community_area: str | None
    latitude: float
    longitude: float
    facility_type: str | None
    score: float
    tier: TierName
    reasons: list[str] = Field(description="The list row's reasons, in words")


class Route(BaseModel):
    route: int = Field(description="The route's number, from 1 (the route with the list's riskiest stop)")
    length_km: float = Field(description="Straight-line km between consecutive stops (no road network)")
    stops: list[RouteStop]


class NotRouted(BaseModel):
    rank: int
    establishment_id: str
    name: str | None
    why: str = Field(examples=["no coordinates in the city's data"])


class RoutePlanOut(BaseModel):
    """A day's list split into one route per inspector, as stored with the list it came from."""

    plan_id: int = Field(examples=[4])
    list_id: int = Field(description="The list the routes were made from: GET /v1/inspections/lists/{id}")
    city: str = Field(examples=["chicago"])
    date: str = Field(examples=["2014-08-30"])
    inspectors: int = Field(examples=[4])
    per_inspector: int = Field(examples=[10])
    method: str
    model: dict[str, str]
    created_at: str
    routes: list[Route]
    total_length_km: float = Field(description="Sum of the routes' straight-line lengths")
    distance: str = Field(description="How lengths are measured (straight lines: no road network offline)")
    not_routed: list[NotRouted] = Field(description="Rows of the list without coordinates: not placed")
