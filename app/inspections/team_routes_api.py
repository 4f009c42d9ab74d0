"""Routes for a team over HTTP: split a day's list into one route per inspector; plans as stored."""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import Response

from app.inspections.errors import RouteNotFound
from app.inspections.route_service import (
    MAX_INSPECTORS,
    MAX_PER_INSPECTOR,
    STOP_FIELDS,
    TeamQuery,
    issue_routes,
    plan_json,
    stored_plan,
)
from app.inspections.routes import AUTH_ERRORS, DAILY_BUSY, ERRORS, daily_lists, wants_csv
from app.inspections.schemas import RoutePlanOut
from app.platform.deps import INSPECTOR_SECURITY, InspectorDep
from app.platform.handlers import JSONBytes
from app.platform.schemas import ErrorResponse, IsoDate
from app.platform.storage.route_plans import RoutePlan

router = APIRouter(prefix="/v1/inspections", tags=["inspections"])
CSV_COLUMNS = ("route", "stop", *STOP_FIELDS, "reasons")  # a stop as the plan holds it, then its words
ROUTE_CSV = {
    "text/csv": {"example": "route,stop,rank,establishment_id,name,...\n1,1,1,2298459,SAIMAI THAI,...\n"}
}
NO_COORDINATES: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ErrorResponse,
        "description": "A bad parameter (named in details), or a city whose data has no coordinates "
        "(e.g. Boston): its list cannot be split by distance",
    }
}


def plan_csv(stored: RoutePlan, routes: list[dict[str, Any]], name: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for route in routes:
        for stop in route["stops"]:
            writer.writerow(stop | {"route": route["route"], "reasons": "; ".join(stop["reasons"])})
    filename = f"civicrisk-{stored.city}-{stored.list_date.isoformat()}-{name}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "X-Plan-Id": str(stored.id)},
    )


@router.get(
    "/{city}/daily/routes",
    response_model=RoutePlanOut,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={
        **ERRORS,
        **AUTH_ERRORS,
        **DAILY_BUSY,
        **NO_COORDINATES,
        200: {"content": ROUTE_CSV, "description": "The routes (JSON, or CSV of every stop when asked)"},
    },
)
async def daily_routes(
    request: Request,
    _: InspectorDep,
    city: str,
    inspectors: Annotated[
        int, Query(ge=1, le=MAX_INSPECTORS, description="Routes to make: one per inspector")
    ],
    per_inspector: Annotated[
        int,
        Query(ge=1, le=MAX_PER_INSPECTOR, description="Stops per route; the list's top inspectors × this"),
    ],
    date: Annotated[
        IsoDate | None, Query(description="YYYY-MM-DD; default: the day after the latest data")
    ] = None,
    format: Annotated[
        Literal["json", "csv"] | None, Query(description="csv, or send Accept: text/csv")
    ] = None,
) -> Response:
    """Split the top of the day's list into one compact route per inspector, each a short path with
    the riskiest places early; stored with the list it came from. Lengths are straight lines."""
    query = TeamQuery(city, date, inspectors, per_inspector)
    stored, issued = await anyio.to_thread.run_sync(issue_routes, daily_lists(request), query)
    if wants_csv(request, format):
        return plan_csv(stored, stored.content["routes"], f"routes-{stored.id}")
    return JSONBytes(plan_json(stored, issued), headers={"X-Plan-Id": str(stored.id)})


@router.get(
    "/routes/{plan_id}",
    response_model=RoutePlanOut,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={**ERRORS, **AUTH_ERRORS, 200: {"content": ROUTE_CSV, "description": "The plan as stored"}},
)
async def route_plan(
    request: Request,
    _: InspectorDep,
    plan_id: Annotated[int, Path(ge=1, le=2_147_483_647, description="The id a route plan was stored with")],
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Response:
    """A route plan exactly as it was stored, with the list it came from."""
    stored, issued = await anyio.to_thread.run_sync(stored_plan, daily_lists(request), plan_id)
    if wants_csv(request, format):
        return plan_csv(stored, stored.content["routes"], f"routes-{stored.id}")
    return JSONBytes(plan_json(stored, issued))


@router.get(
    "/routes/{plan_id}/{route}",
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={**ERRORS, **AUTH_ERRORS, 200: {"content": ROUTE_CSV, "description": "One route of the plan"}},
)
async def one_route(
    request: Request,
    _: InspectorDep,
    plan_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    route: Annotated[int, Path(ge=1, le=MAX_INSPECTORS, description="The route's number in the plan")],
    format: Annotated[Literal["json", "csv"] | None, Query()] = None,
) -> Response:
    """One inspector's route: its stops in visiting order (JSON, or CSV for the sheet)."""
    stored, _issued = await anyio.to_thread.run_sync(stored_plan, daily_lists(request), plan_id)
    found = route_of(stored, route)
    if wants_csv(request, format):
        return plan_csv(stored, [found], f"routes-{stored.id}-route-{route}")
    return JSONBytes({"plan_id": stored.id, "list_id": stored.list_id, "city": stored.city, **found})


def route_of(stored: RoutePlan, number: int) -> dict[str, Any]:
    routes: list[dict[str, Any]] = stored.content["routes"]
    for found in routes:
        if found["route"] == number:
            return found
    raise RouteNotFound(f"plan {stored.id} has {len(routes)} route(s); no route {number}")
