"""Partner scoring's request and response shapes, as they appear in the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.platform.sizes import MAX_RECORDS

FeatureValue = float | str | None


EXAMPLE_RECORD: dict[str, JsonValue] = {
    "prior_inspections": 4,
    "days_since_last": 210,
    "prev_critical": 1,
    "prev_serious": 0,
    "prev_failed": 0,
    "past_critical_inspections": 2,
    "facility_type": "Restaurant",
    "risk_category": "Risk 1 (High)",
    "nearest10_14d_critical_share": 0.3,
    "years_licensed": None,
}


EXAMPLE_REASONS: list[JsonValue] = [
    {
        "feature": "past_critical_inspections",
        "value": 2.0,
        "contribution": 0.412,
        "text": "raises the risk: number of earlier inspections with a critical violation is 2"
        " (+0.41 log-odds)",
    },
    {
        "feature": "nearby_inspections_365d_2km",
        "value": None,
        "contribution": -0.231,
        "text": "lowers the risk: number of inspections within 2km in the last 365d is not known"
        " (-0.23 log-odds)",
    },
]


class ScoreRequest(BaseModel):
    """Records in the model's input schema (see GET /v1/models/{name}). A missing field is null:
    numbers are then imputed as in training, categories become "Unknown"."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"records": [EXAMPLE_RECORD]}]})

    records: list[dict[str, FeatureValue]] = Field(min_length=1, max_length=MAX_RECORDS)


class ScoreTable(BaseModel):
    """The same records as a table: the feature names once, then one row of values per record, in
    that order (pandas: `frame.to_json(orient="split", index=False, double_precision=15)`). Columns
    left out are missing in every row. For large batches: no field name is repeated per record."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"columns": list(EXAMPLE_RECORD), "data": [list(EXAMPLE_RECORD.values())]}]
        },
    )

    columns: list[str] = Field(min_length=1, description="Feature names of the model's schema, each once")
    data: list[list[FeatureValue]] = Field(
        min_length=1, max_length=MAX_RECORDS, description="One row per record, a value per column"
    )


class Reason(BaseModel):
    feature: str
    value: FeatureValue = Field(description="The input value (null when missing)")
    contribution: float = Field(description="Signed share of the score's log-odds; > 0 raises the risk")
    text: str


class ScoredRecord(BaseModel):
    score: float = Field(ge=0, le=1, description="Probability of the model's label")
    tier: Literal["high", "medium", "low"]
    reasons: list[Reason] = Field(description="Up to 3 largest contributions, largest first")


class PartnerScoredRecord(ScoredRecord):
    """A partner's scored record, with what the score rests on (app/scoring/completeness.py)."""

    tier: Literal["high", "medium", "low", "insufficient_data"] = Field(  # type: ignore[assignment]
        description="insufficient_data: every input of a feature family the bundle requires is missing "
        "(the score is given, but not trusted; `tier_reason` says why)"
    )
    missing: list[str] = Field(
        description='Features with no value in the record: absent, null, or the category "Unknown"'
    )
    unknown_categories: dict[str, str] = Field(
        description="Feature → value not among its allowed_values (GET /v1/models/{name}): pooled with "
        "the values too rare in training to get a weight of their own"
    )
    tier_reason: str | None = Field(
        default=None, description="Only with tier insufficient_data: which required inputs are missing"
    )


class ScoreResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "model": "chicago-food-inspections",
                    "version": "2014-08-29-d443bf14",
                    "reasons_method": "exact linear contributions",
                    "results": [
                        {
                            "score": 0.27,
                            "tier": "medium",
                            "reasons": EXAMPLE_REASONS,
                            "missing": ["years_licensed"],
                            "unknown_categories": {},
                        }
                    ],
                }
            ]
        }
    )

    model: str
    version: str
    reasons_method: str
    results: list[PartnerScoredRecord] = Field(description="One per record, in request order")


TierName = Literal["low", "medium", "high"]
