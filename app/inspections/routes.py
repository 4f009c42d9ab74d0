"""Inspectors' daily lists (JSON or CSV), lists as issued, and recorded inspection outcomes."""

from __future__ import annotations

import csv
import io
from datetime import date
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from app.inspections.daily import API_DEFAULT_LIMIT, DailyLists, DailyQuery
from app.inspections.schemas import DailyList, OutcomesIn, OutcomesRecorded
from app.inspections.staleness import STALENESS_HEADERS, observe
from app.platform.deps import INSPECTIONS, INSPECTOR_SECURITY, SECURITY, InspectorDep, check_partner
from app.platform.errors import InvalidRequest, Problem
from app.platform.handlers import JSONBytes
from app.platform.key_first import key_first_route
from app.platform.schemas import ErrorResponse, IsoDate
from app.platform.sizes import OUTCOMES_MAX_BODY_BYTES
from app.platform.storage.repository import IssuedList
from training.serving import LIST_PARAMETERS

router = APIRouter(prefix="/v1/inspections", tags=["inspections"])
CSV_COLUMNS = (
    "rank",
    "establishment_id",
    "name",
    "address",
    "zip",
    "community_area",
    "latitude",
    "longitude",
    "facility_type",
    "risk_category",
    "score",
    "tier",
    "reasons",
    "last_inspection_date",
    "last_result",
)
ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown city or list"},
    422: {"model": ErrorResponse, "description": "A bad parameter, named in details"},
    503: {"model": ErrorResponse, "description": "No model for the city, or the database is down"},
}
# With CIVICRISK_INSPECTOR_AUTH=key (app.platform.deps.require_inspector); the default leaves these
# routes open.
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "CIVICRISK_INSPECTOR_AUTH=key: a missing or invalid key"},
    403: {
        "model": ErrorResponse,
        "description": "CIVICRISK_INSPECTOR_AUTH=key: the key lacks the inspections scope",
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before asking again", "schema": {"type": "integer"}}
}
# The daily list's own 503: besides the others, its computation may wait past the configured limit.
DAILY_BUSY: dict[int | str, dict[str, Any]] = {
    503: {
        "model": ErrorResponse,
        "description": "No model for the city, or the database is down; or `daily_lists_busy`: list "
        "computations stayed busy past CIVICRISK_DAILY_MAX_WAIT_SECONDS (Retry-After says when to ask again)",
        "headers": RETRY_AFTER,
    }
}
CSV_CONTENT = {"text/csv": {"example": "rank,establishment_id,name,...\n1,2298459,SAIMAI THAI,...\n"}}


def daily_lists(request: Request) -> DailyLists:
    lists: DailyLists = request.app.state.daily_lists
    return lists


def as_json(issued: IssuedList, display_name: str | None = None) -> dict[str, Any]:
    return {
        "list_id": issued.id,
        "city": issued.city,
        "city_display_name": display_name,
        "date": issued.list_date.isoformat(),
        "model": {"name": issued.model_name, "version": issued.model_version},
        "parameters": issued.parameters,
        "issued_at": issued.issued_at.isoformat(),
        "rows": issued.rows,
    }


def area_filters(request: Request) -> tuple[tuple[str, str], ...]:
    """Query parameters beyond the list's own: the city's `[areas]` filters (borough=Queens);
    the list keeps those its city declares."""
    return tuple((name, value) for name, value in request.query_params.items() if name not in LIST_PARAMETERS)


def as_csv(issued: IssuedList) -> Response:
    buffer = io.StringIO()
    areas = [key for key in (issued.rows[0] if issued.rows else {}) if key.startswith("area_")]
    fieldnames = [*CSV_COLUMNS, *areas]  # a city's [areas] columns after the common ones
    writer = csv.DictWriter(buffer, fieldnames=fieldnames, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in issued.rows:
        writer.writerow(row | {"reasons": "; ".join(reason["text"] for reason in row.get("reasons", []))})
    filename = f"civicrisk-{issued.city}-{issued.list_date.isoformat()}-list-{issued.id}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-List-Id": str(issued.id)},
    )


def wants_csv(request: Request, format: str | None) -> bool:
    if format is not None:
        return format == "csv"
    return "text/csv" in request.headers.get("accept", "")


def parse_date(value: str | None) -> date | None:
    if value is None or value == "":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"date {value!r} is not a date", (Problem(("query", "date"), "expected YYYY-MM-DD"),)
        ) from None


@router.get(
    "/{city}/daily",
    response_model=DailyList,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={
        **ERRORS,
        **AUTH_ERRORS,
        **DAILY_BUSY,
        200: {
            "content": CSV_CONTENT,
            "description": "The list (JSON, or CSV when asked); the CSV's X-Data-* headers say how old "
            "its newest outcome is",
            "headers": STALENESS_HEADERS,
        },
    },
)
async def daily_list(
    request: Request,
    _: InspectorDep,
    city: str,
    date: Annotated[
        IsoDate | None, Query(description="YYYY-MM-DD; default: the day after the latest data")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="Rows to return")] = API_DEFAULT_LIMIT,
    facility_type: Annotated[str | None, Query(max_length=128, examples=["Restaurant"])] = None,
    zip: Annotated[str | None, Query(max_length=16, examples=["60614"])] = None,
    community_area: Annotated[str | None, Query(max_length=128, examples=["LINCOLN PARK"])] = None,
    min_tier: Annotated[Literal["low", "medium", "high"], Query()] = "low",
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")
    ] = None,
) -> Response:
    """Issue today's prioritised list for a city: ranked, with reasons; stored so it can be retrieved.
    Each list is computed once, however many ask for it at once; a new date's list takes about a
    second, and a 503 with Retry-After says when computations are busy past the configured wait."""
    query = DailyQuery(
        city=city,
        list_date=date,
        limit=limit,
        facility_type=facility_type or None,
        zip=zip or None,
        community_area=community_area or None,
        min_tier=min_tier,
        areas=area_filters(request),
    )
    issued = await anyio.to_thread.run_sync(daily_lists(request).issue, query)
    state = request.app.state
    age = await anyio.to_thread.run_sync(
        observe, daily_lists(request), city, state.settings.outcomes_max_age_days, state.metrics
    )
    if wants_csv(request, format):
        response = as_csv(issued)
        response.headers.update(age.headers())
        return response
    display_name = daily_lists(request).cities.display_name(issued.city)
    headers = {"X-List-Id": str(issued.id), **age.headers()}
    return JSONBytes(as_json(issued, display_name) | {"staleness": age.as_json()}, headers=headers)


@router.get(
    "/lists/{list_id}",
    response_model=DailyList,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={
        **ERRORS,
        **AUTH_ERRORS,
        200: {"content": CSV_CONTENT, "description": "The list exactly as issued"},
    },
)
async def issued_list(
    request: Request,
    _: InspectorDep,
    list_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="The id a daily list was issued with")],
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Response:
    """A list exactly as it was issued (same rows, scores, reasons and model), whatever changed since."""
    issued = await anyio.to_thread.run_sync(daily_lists(request).stored, list_id)
    if wants_csv(request, format):
        return as_csv(issued)
    return JSONBytes(as_json(issued, daily_lists(request).cities.display_name(issued.city)))


_OUTCOME_ERRORS = {
    400: "The body is not JSON",
    401: "Missing or invalid API key (checked before the body is read)",
    403: "The key lacks the `inspections` scope",
    413: "Over 8 MiB (refused as the body arrives, chunked or not)",
    415: "Content-Type is not application/json",
    422: "More than 1,000 outcomes, or a field missing or invalid (named in details; dates as YYYY-MM-DD)",
}


async def record_outcomes(request: Request, city: str, body: OutcomesIn) -> Response:
    """Record inspection results (idempotent by inspection id): 201 if any is new, 200 if none is.
    At most 1,000 outcomes and 8 MiB per request."""
    # The key, the Content-Type and the body's size were checked before FastAPI read the body
    # (app/platform/key_first.py: the route class below), so no PartnerDep here.
    written = await anyio.to_thread.run_sync(daily_lists(request).record_outcomes, city, body.outcomes)
    status = 201 if written.created else 200
    return JSONBytes({"created": written.created, "already_recorded": written.already_recorded}, status)


router.add_api_route(
    "/{city}/outcomes",
    record_outcomes,
    methods=["POST"],
    response_model=OutcomesRecorded,
    status_code=201,
    openapi_extra={"security": SECURITY},
    responses={
        **ERRORS,
        **{code: {"model": ErrorResponse, "description": text} for code, text in _OUTCOME_ERRORS.items()},
        200: {"model": OutcomesRecorded, "description": "Every outcome was already recorded"},
    },
    route_class_override=key_first_route(
        lambda request: check_partner(request, INSPECTIONS), OUTCOMES_MAX_BODY_BYTES
    ),
)
