"""The inspectors' page: today's list in a browser, with filters, a map, a CSV link and print styles."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, Query, Request
from fastapi.templating import Jinja2Templates
from starlette.responses import HTMLResponse

from app.inspections.areas import known_values
from app.inspections.citymap import load_city_map
from app.inspections.daily import PAGE_DEFAULT_LIMIT, DailyLists, DailyQuery
from app.inspections.default_city import default_city
from app.inspections.page_sections import trust_sections
from app.inspections.route_service import MAX_INSPECTORS, MAX_PER_INSPECTOR
from app.inspections.routes import area_filters, daily_lists, parse_date
from app.platform.deps import INSPECTOR_SECURITY, InspectorDep
from app.platform.errors import ServiceError
from app.platform.schemas import DATE_PATTERN, json_error

router = APIRouter(tags=["inspections"])
templates = Jinja2Templates(directory=Path(__file__).resolve().parent / "templates")
PAGE_LIMIT = PAGE_DEFAULT_LIMIT


@dataclass(frozen=True)
class CityOption:
    name: str
    display: str


def city_options(lists: DailyLists) -> list[CityOption]:
    """Cities with a config and a loaded inspection model."""
    options = []
    for name in sorted(lists.cities.configs()):
        try:
            lists.model_for(name)
        except ServiceError:
            continue
        options.append(CityOption(name, lists.cities.display_name(name)))
    return options


def render_page(
    lists: DailyLists, query: DailyQuery, raw_date: str | None, error: str | None = None
) -> tuple[dict[str, Any], int]:
    """Blocking: issue the list and build the template's context. Returns (context, status)."""
    cities = city_options(lists)
    context: dict[str, Any] = {
        "cities": cities,
        "city": query.city,
        "city_display": lists.cities.display_name(query.city),
        "filters": query,
        "limit": query.limit,
        "max_limit": 1000,
        "list_date": raw_date or "",
        "facility_types": [],
        "community_areas": [],
        "area_selects": [],  # the city's [areas] filters (borough, ward...), one select each
        "city_map": None,
        "points": [],
        "date_min": None,
        "date_max": None,
        # The label in the city's own words (its config's [label].description): Boston's is "severe".
        "label_description": "a routine inspection finds a violation of the label's class",
        "routes_possible": False,
        "max_inspectors": MAX_INSPECTORS,
        "max_per_inspector": MAX_PER_INSPECTOR,
    }
    try:
        data = lists.city_data(query.city)
        context.update(page_words(data.config))
        chosen = {name: value.casefold() for name, value in query.areas}
        context["area_selects"] = [
            {"name": name, "values": known_values(data, name), "selected": chosen.get(name, "")}
            for name in data.config.area_filters
        ]
        earliest, latest = lists.date_range(data)
        context.update(date_min=earliest.isoformat(), date_max=latest.isoformat())
        if error:
            context["error"] = error
            return context, 422
        ranked = lists.ranked_day(query.city, query.list_date)
        issued = lists.issue(query)
    except ServiceError as error:
        details = "; ".join(problem.message for problem in error.problems)
        context["error"] = f"{error.message}" + (f" ({details})" if details else "")
        context["retry_after"] = error.retry_after
        return context, error.status
    config = data.config
    context.update(
        issued=issued,
        rows=issued.rows,
        in_scope=len(ranked.rows),
        list_date=issued.list_date.isoformat(),
        facility_types=sorted({kind for kind in ranked.rows.column("facility_type") if kind}),
        community_areas=sorted({area for area in ranked.rows.column("community_area") if area}),
        csv_url=f"/v1/inspections/lists/{issued.id}?format=csv",
        list_url=f"/v1/inspections/lists/{issued.id}",
    )
    if config.map_boundaries is not None:
        city_map = load_city_map(config.map_boundaries, config.map_name_property)
        points = []
        for row in issued.rows:
            if row["latitude"] is None or row["longitude"] is None:
                continue
            x, y = city_map.project(row["latitude"], row["longitude"])
            if city_map.contains(x, y):
                points.append({"x": x, "y": y, "tier": row["tier"], "rank": row["rank"], "name": row["name"]})
        context.update(city_map=city_map, points=points)
    return context, 200


def page_words(config: Any) -> dict[str, Any]:
    """What the page says about the city, from its config: its name, its label and whether it has
    coordinates (routes need them)."""
    return {
        "city_display": config.display_name or config.city.title(),
        "label_description": config.label_description or context_label(config.label_name),
        "routes_possible": "latitude" in config.columns and "longitude" in config.columns,
    }


def context_label(name: str) -> str:
    return f"the inspection meets the label {name.replace('_', ' ')!r}"


@router.get(
    "/inspector",
    response_class=HTMLResponse,
    openapi_extra={"security": INSPECTOR_SECURITY},
    responses={
        200: {"content": {"text/html": {}}},
        404: {"content": {"text/html": {}}, "description": "The page, saying the city is unknown"},
        422: {
            "content": {"text/html": {}, **json_error("")["content"]},
            "description": "The page saying which field is wrong (a date); or, for a parameter past "
            "its documented bounds, the JSON error",
        },
        503: {
            "content": {"text/html": {}},
            "description": "The page saying why: no model for the city, the database is down, or list "
            "computations busy past CIVICRISK_DAILY_MAX_WAIT_SECONDS",
        },
        401: json_error("CIVICRISK_INSPECTOR_AUTH=key: a missing or invalid key"),
        403: json_error("CIVICRISK_INSPECTOR_AUTH=key: the key lacks the inspections scope"),
    },
)
async def inspector_page(
    request: Request,
    _: InspectorDep,
    city: Annotated[str | None, Query(max_length=64)] = None,
    # Checked by the page itself, which shows the form again with the error; documented as a date.
    date: Annotated[
        str | None, Query(max_length=32, json_schema_extra={"pattern": f"^$|{DATE_PATTERN}"})
    ] = None,
    facility_type: Annotated[str | None, Query(max_length=128)] = None,
    zip: Annotated[str | None, Query(max_length=16)] = None,
    community_area: Annotated[str | None, Query(max_length=128)] = None,
    min_tier: Annotated[Literal["low", "medium", "high"], Query()] = "low",
    limit: Annotated[int, Query(ge=1, le=1000)] = PAGE_LIMIT,
) -> HTMLResponse:
    """Today's list for inspectors: pick a city and date, filter, read the reasons, print or download."""
    lists = daily_lists(request)
    if city is None:
        configured = request.app.state.settings.default_city

        def choose() -> str:
            return default_city(lists, [option.name for option in city_options(lists)], configured)

        city = await anyio.to_thread.run_sync(choose)
    error = None
    list_date: dt.date | None = None
    try:
        list_date = parse_date(date)
    except ServiceError:
        error = f"date {date!r} is not a date (YYYY-MM-DD)"
    query = DailyQuery(
        city=city,
        list_date=list_date,
        limit=limit,
        facility_type=facility_type or None,
        zip=zip or None,
        community_area=community_area or None,
        min_tier=min_tier,
        areas=area_filters(request),  # the city's [areas] filters: borough=Queens
    )
    context, status = await anyio.to_thread.run_sync(render_page, lists, query, date, error)
    if status == 200:  # the staleness banner and how the lists did (app/inspections/page_sections.py)
        state = request.app.state
        context |= await anyio.to_thread.run_sync(trust_sections, lists, city, state.settings, state.metrics)
    context["page_url"] = str(request.url_for("inspector_page"))
    context["routes_url"] = str(request.url_for("inspector_routes"))
    retry_after = context.get("retry_after")
    headers = None if retry_after is None else {"Retry-After": str(retry_after)}
    return templates.TemplateResponse(request, "inspector.html", context, status_code=status, headers=headers)
