"""A day's list split into routes for a team, stored with the list it came from.

Blocking: callers run it in a worker thread. The list is the daily list of the top
`inspectors × per_inspector` establishments (issued, or found stored, as the list route does); the
routes are computed from its rows and stored once per (list, team, method).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from app.inspections.daily import DailyLists, DailyQuery
from app.inspections.errors import NoCoordinates, RoutePlanNotFound
from app.inspections.team_routes import METHOD, Place, path_km, plan
from app.platform.errors import Problem
from app.platform.storage.repository import IssuedList
from app.platform.storage.route_plans import RoutePlan

MAX_INSPECTORS = 50
MAX_PER_INSPECTOR = 40
DISTANCE_NOTE = (
    "straight-line (great-circle) km between consecutive stops; no road network is available offline, "
    "so the distance driven or walked is longer"
)
STOP_FIELDS = (
    "rank",
    "establishment_id",
    "name",
    "address",
    "zip",
    "community_area",
    "latitude",
    "longitude",
    "facility_type",
    "score",
    "tier",
)


@dataclass(frozen=True)
class TeamQuery:
    city: str
    list_date: date | None
    inspectors: int
    per_inspector: int


def issue_routes(lists: DailyLists, query: TeamQuery) -> tuple[RoutePlan, IssuedList]:
    """The plan for the day's list and team (stored, or found stored) and the list it came from."""
    config = lists.city_data(query.city).config  # 404 for an unknown city
    if "latitude" not in config.columns or "longitude" not in config.columns:
        raise NoCoordinates(
            f"{query.city}'s list cannot be split into routes: its data has no coordinates",
            (
                Problem(
                    ("path", "city"),
                    f"the city config of {query.city!r} maps no latitude/longitude columns, so its "
                    "establishments cannot be placed on a map or grouped by distance; use the daily "
                    "list instead",
                ),
            ),
        )
    issued = lists.issue(DailyQuery(query.city, query.list_date, query.inspectors * query.per_inspector))
    content = routes_content(issued.rows, query.inspectors)
    repository = lists.repository()
    stored = repository.store_route_plan(issued, query.inspectors, query.per_inspector, METHOD, content)
    return stored, issued


def stored_plan(lists: DailyLists, plan_id: int) -> tuple[RoutePlan, IssuedList]:
    found = lists.repository().get_route_plan(plan_id)
    if found is None:
        raise RoutePlanNotFound(f"no route plan with id {plan_id}")
    return found, lists.stored(found.list_id)


def routes_content(rows: list[dict[str, Any]], inspectors: int) -> dict[str, Any]:
    """The routes document: stops in visiting order with their list rank, lengths, and the rows
    that could not be placed (no coordinates)."""
    located = [row for row in rows if row.get("latitude") is not None and row.get("longitude") is not None]
    placed = {id(row) for row in located}
    places = [Place(int(row["rank"]), float(row["latitude"]), float(row["longitude"])) for row in located]
    routes: list[dict[str, Any]] = []
    total = 0.0
    for number, route in enumerate(plan(places, inspectors), start=1):
        stops = [
            {"stop": stop, **{field: located[i].get(field) for field in STOP_FIELDS},
             "reasons": [reason["text"] for reason in located[i].get("reasons", [])]}
            for stop, i in enumerate(route, start=1)
        ]  # fmt: skip
        length = path_km(places, route)
        total += length
        routes.append({"route": number, "length_km": round(length, 2), "stops": stops})
    not_routed = [
        {"rank": row["rank"], "establishment_id": row["establishment_id"], "name": row.get("name"),
         "why": "no coordinates in the city's data"}
        for row in rows
        if id(row) not in placed
    ]  # fmt: skip
    return {
        "routes": routes,
        "total_length_km": round(total, 2),
        "distance": DISTANCE_NOTE,
        "not_routed": not_routed,
    }


def plan_json(stored: RoutePlan, issued: IssuedList) -> dict[str, Any]:
    return {
        "plan_id": stored.id,
        "list_id": stored.list_id,
        "city": stored.city,
        "date": stored.list_date.isoformat(),
        "inspectors": stored.inspectors,
        "per_inspector": stored.per_inspector,
        "method": stored.method,
        "model": {"name": issued.model_name, "version": issued.model_version},
        "created_at": stored.created_at.isoformat(),
        **stored.content,
    }
