"""The inspectors' pages for routes: a team's plan (every route on one map) and one route's
printable sheet (its path drawn on the city map, the stops in order, its CSV)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Path, Query, Request
from starlette.responses import HTMLResponse

from app.inspections.citymap import CityMap, load_city_map
from app.inspections.daily import DailyLists
from app.inspections.page import city_options, page_words, templates
from app.inspections.route_service import (
    DISTANCE_NOTE,
    MAX_INSPECTORS,
    MAX_PER_INSPECTOR,
    TeamQuery,
    issue_routes,
    stored_plan,
)
from app.inspections.routes import daily_lists, parse_date
from app.inspections.team_routes_api import route_of
from app.platform.deps import INSPECTOR_SECURITY, InspectorDep
from app.platform.errors import ServiceError
from app.platform.schemas import DATE_PATTERN, json_error
from app.platform.storage.repository import IssuedList
from app.platform.storage.route_plans import RoutePlan

router = APIRouter(tags=["inspections"])
# Distinct on white and in greyscale print, one per route (they repeat past ten routes).
ROUTE_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                 "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")  # fmt: skip
HTML_ERRORS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/html": {}}},
    404: {"content": {"text/html": {}}, "description": "The page, saying the city, plan or route is unknown"},
    422: {
        "content": {"text/html": {}, **json_error("")["content"]},
        "description": "The page saying what is wrong: a date, or a city without coordinates; or, for "
        "a parameter past its documented bounds, the JSON error",
    },
    503: {
        "content": {"text/html": {}},
        "description": "The page saying why: no model, or the database is down",
    },
}


def drawn_route(city_map: CityMap, route: dict[str, Any], colour: str) -> dict[str, Any]:
    """A route on the map: its stops projected, in visiting order, and the path through them."""
    stops = []
    for stop in route["stops"]:
        x, y = city_map.project(stop["latitude"], stop["longitude"])
        stops.append({"x": x, "y": y, "stop": stop["stop"], "rank": stop["rank"], "name": stop["name"]})
    path = " ".join(f"{stop['x']:g},{stop['y']:g}" for stop in stops)
    return {"route": route["route"], "colour": colour, "stops": stops, "path": path}


def zoomed_view(city_map: CityMap, drawn: dict[str, Any], margin: float = 0.2) -> dict[str, float]:
    """A viewBox around one route (with a margin, at least a fifth of the city's width) and the
    scale of its marks, so a route across a few streets is not a dot on the whole city."""
    xs = [stop["x"] for stop in drawn["stops"]] or [0.0]
    ys = [stop["y"] for stop in drawn["stops"]] or [0.0]
    size = max(max(xs) - min(xs), max(ys) - min(ys), city_map.width / 5) * (1 + 2 * margin)
    x = min(max((min(xs) + max(xs) - size) / 2, 0.0), max(city_map.width - size, 0.0))
    y = min(max((min(ys) + max(ys) - size) / 2, 0.0), max(city_map.height - size, 0.0))
    return {"x": round(x, 1), "y": round(y, 1), "size": round(size, 1), "scale": size / city_map.width}


def _plan_context(lists: DailyLists, stored: RoutePlan, issued: IssuedList) -> dict[str, Any]:
    config = lists.city_data(stored.city).config
    routes: list[dict[str, Any]] = stored.content["routes"]
    context: dict[str, Any] = {
        **page_words(config),
        "plan": stored,
        "issued": issued,
        "routes": routes,
        "colours": {
            route["route"]: ROUTE_COLOURS[(route["route"] - 1) % len(ROUTE_COLOURS)] for route in routes
        },
        "content": stored.content,
        "distance_note": DISTANCE_NOTE,
        "city_map": None,
        "drawn": [],
    }
    if config.map_boundaries is not None:
        city_map = load_city_map(config.map_boundaries, config.map_name_property)
        context["city_map"] = city_map
        context["drawn"] = [
            drawn_route(city_map, route, context["colours"][route["route"]]) for route in routes
        ]
    return context


def _error_context(lists: DailyLists, city: str, error: ServiceError) -> dict[str, Any]:
    details = "; ".join(problem.message for problem in error.problems)
    context: dict[str, Any] = {"error": error.message + (f" ({details})" if details else ""), "city": city}
    try:
        context.update(page_words(lists.city_data(city).config))
    except ServiceError:
        context.update(city_display=city, routes_possible=False)
    return context


@router.get(
    "/inspector/routes",
    response_class=HTMLResponse,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses=HTML_ERRORS,
)
async def inspector_routes(
    request: Request,
    _: InspectorDep,
    city: Annotated[str, Query(max_length=64)],
    inspectors: Annotated[int, Query(ge=1, le=MAX_INSPECTORS)] = 4,
    per_inspector: Annotated[int, Query(ge=1, le=MAX_PER_INSPECTOR)] = 10,
    # Checked by the page itself, which says what is wrong; documented as a date.
    date: Annotated[
        str | None, Query(max_length=32, json_schema_extra={"pattern": f"^$|{DATE_PATTERN}"})
    ] = None,
) -> HTMLResponse:
    """A team's routes for the day: every route on one map, each with its sheet and CSV."""
    lists = daily_lists(request)

    def render() -> tuple[dict[str, Any], int]:
        try:
            query = TeamQuery(city, parse_date(date), inspectors, per_inspector)
            stored, issued = issue_routes(lists, query)
            context, status = _plan_context(lists, stored, issued), 200
        except ServiceError as error:
            context, status = _error_context(lists, city, error), error.status
        context.update(cities=city_options(lists), inspectors=inspectors, per_inspector=per_inspector)
        return context, status

    context, status = await anyio.to_thread.run_sync(render)
    context.update(
        page_url=str(request.url_for("inspector_page")),
        routes_url=str(request.url_for("inspector_routes")),
        max_inspectors=MAX_INSPECTORS,
        max_per_inspector=MAX_PER_INSPECTOR,
    )
    return templates.TemplateResponse(request, "route_plan.html", context, status_code=status)


@router.get(
    "/inspector/routes/{plan_id}/{route}",
    response_class=HTMLResponse,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses=HTML_ERRORS,
)
async def route_sheet(
    request: Request,
    _: InspectorDep,
    plan_id: Annotated[int, Path(ge=1, le=2_147_483_647)],
    route: Annotated[int, Path(ge=1, le=MAX_INSPECTORS)],
) -> HTMLResponse:
    """One inspector's route as a printable sheet: the path on the map and the stops in order."""
    lists = daily_lists(request)

    def render() -> tuple[dict[str, Any], int]:
        try:
            stored, issued = stored_plan(lists, plan_id)
            context = _plan_context(lists, stored, issued)
            context["route"] = route_of(stored, route)
            context["drawn"] = [drawn for drawn in context["drawn"] if drawn["route"] == route]
            if context["city_map"] is not None and context["drawn"]:
                context["view"] = zoomed_view(context["city_map"], context["drawn"][0])
            return context, 200
        except ServiceError as error:
            return {"error": error.message, "city_display": "", "routes_possible": False}, error.status

    context, status = await anyio.to_thread.run_sync(render)
    context["page_url"] = str(request.url_for("inspector_page"))
    return templates.TemplateResponse(request, "route_sheet.html", context, status_code=status)
