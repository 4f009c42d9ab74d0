"""The shapes every domain shares or the platform answers itself (errors, health, models, reload),
as they appear in the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

# Years 1900-2199: the city data's dates and pandas' timestamps (to 2262) both hold them.
DATE_PATTERN = r"^(19|20|21)\d\d-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$"
_ISO_DATE = re.compile(DATE_PATTERN)


def _iso_date_only(value: object) -> object:
    """pydantic alone also takes 0 or "0" (1970-01-01) and a datetime at midnight for a date; the
    service's own routes take YYYY-MM-DD only (then pydantic checks it is a real day)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD, in 1900..2199")
    return value


# A date in civicrisk's own routes (bodies and query strings). Routes that follow an outside contract
# (Lead Safe, CDS Hooks/FHIR) keep that contract's date formats.
IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date_only),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
]


class ErrorDetail(BaseModel):
    loc: list[str | int] = Field(
        description='Where: e.g. ["records", 3, "prev_critical"] or ["query", "date"]'
    )
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="Stable machine-readable code, e.g. invalid_request, model_not_found")
    message: str
    details: list[ErrorDetail] = []


class ErrorResponse(BaseModel):
    """The one error shape of every non-2xx answer."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "error": {
                        "code": "invalid_request",
                        "message": "1 invalid field(s) in records",
                        "details": [
                            {"loc": ["records", 0, "prev_critical"], "message": "must be a number or null"}
                        ],
                    }
                }
            ]
        }
    )

    error: ErrorInfo


# What each partner-route error means, for the OpenAPI `responses` of the routes that share them.
_PARTNER_ERRORS = {
    401: "Missing or invalid API key",
    404: "Unknown model, version, city or establishment",
    413: "Over 10,000 records or the body size limit",
    415: "Content-Type is not application/json",
    422: "A field is unknown, of the wrong type, or not finite (named with its record index)",
    503: "No API key configured, the key store (database) unreachable past its grace period, no model "
    "loaded for the city, or the database is down",
}


def json_error(description: str) -> dict[str, Any]:
    """An OpenAPI response in the one error shape, as JSON, for a route whose own answers are not JSON
    (HTML, PNG): FastAPI would document a `model` under the route's own media type."""
    schema = {"$ref": "#/components/schemas/ErrorResponse"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def partner_errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these status codes of a partner route, each in the one error shape."""
    return {code: {"model": ErrorResponse, "description": _PARTNER_ERRORS[code]} for code in codes}


class Live(BaseModel):
    status: Literal["ok"] = "ok"


class Failure(BaseModel):
    path: str
    error: str = Field(description="e.g. BundleIntegrityError, BundleVersionError")
    reason: str
    still_serving: bool = Field(description="True when a copy verified earlier is still being served")


class RefusedModelSet(BaseModel):
    """The last reload's new set, not served because a bundle in it failed verification."""

    refused_at: str
    generation: int | None = Field(description="The refused generation (null without shared state)")
    message: str
    failures: list[Failure] = Field(description="The bundles that failed in the new set, and why")


class ModelSetState(BaseModel):
    state: Literal["current", "last_good"] = Field(
        description="current: the last reload was served; last_good: it was refused (see `refused`), "
        "and the set served before it still serves"
    )
    generation: int | None = Field(description="The generation served (null without shared state)")
    refused: RefusedModelSet | None = None


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    models_loaded: int
    model_set: ModelSetState
    dependencies: dict[str, str] = Field(
        default_factory=dict,
        description='What the service reaches besides its models, each "ok" or "unreachable: <reason>". '
        "`database`: partner keys are checked against it (the keys last read serve for a grace "
        "period, then partner routes answer 503); scoring needs no database, so the service stays ready",
        examples=[{"database": "ok"}],
    )


class ModelSummary(BaseModel):
    name: str
    version: str = Field(description="The default (newest) version")
    versions: list[str]
    city: str
    city_display_name: str | None
    task: str | None
    label: dict[str, Any]
    selected_model: dict[str, Any]
    trained_until: str | None
    reasons_method: str
    loaded_at: str


class ModelList(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "models": [
                        {
                            "name": "chicago-food-inspections",
                            "version": "2014-08-29-d443bf14",
                            "versions": ["2014-08-29-d443bf14"],
                            "city": "chicago",
                            "city_display_name": "Chicago",
                            "task": "inspection_risk",
                            "label": {"name": "critical_violation", "description": "..."},
                            "selected_model": {"name": "logistic_C0.1", "params": {"C": 0.1}},
                            "trained_until": "2014-08-29",
                            "reasons_method": "exact linear contributions",
                            "loaded_at": "2026-11-23T19:10:00+00:00",
                        }
                    ],
                    "failures": [],
                    "loaded_at": "2026-11-23T19:10:00+00:00",
                }
            ]
        }
    )

    models: list[ModelSummary]
    failures: list[Failure]
    loaded_at: str | None
    generation: int | None = Field(
        default=None,
        description="The model set generation this worker serves (app/platform/generation.py); null "
        "while the database that holds it cannot be read",
    )
    refused: RefusedModelSet | None = Field(
        default=None, description="Set when the last reload's new set was refused; the set listed here serves"
    )


class Feature(BaseModel):
    name: str
    type: Literal["number", "category"]
    description: str
    nullable: bool
    allowed_values: list[str] | None = Field(
        description="Categories the model knows; other values are accepted and pooled as infrequent"
    )


class ModelDetail(ModelSummary):
    feature_schema: list[Feature]
    metrics: dict[str, Any] = Field(
        description="Rolling-origin validation: mean per candidate, per-origin for the served one"
    )
    tiers: dict[str, Any] = Field(description="cut_points {high, medium} and the rule")
    data: dict[str, Any] = Field(description="Training data range, content hash, files")
    libraries: dict[str, Any]
    created_at: str | None
    required_inputs: dict[str, Any] | None = Field(
        default=None,
        description="families (name → features: insufficient_data when all are missing), features (each "
        "required alone) and the rule; null for a bundle that declares none",
    )


class Reloaded(BaseModel):
    models_loaded: int
    failures: list[Failure]
    loaded_at: str | None
    generation: int | None = Field(
        default=None,
        description="The model set generation now stored for every worker (app/platform/generation.py); null "
        "while the database that holds it cannot be read",
    )
