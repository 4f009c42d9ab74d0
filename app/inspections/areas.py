"""The daily list's area filters: Chicago's `community_area` (its boundary polygons) and whatever
columns a city config declares under `[areas]` (borough, ward, ZIP...). A value the city does not
have is a 422 listing the ones it has, never a silently empty list."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from app.inspections.citymap import _area_rings
from app.platform.errors import InvalidRequest, Problem
from training.serving import LIST_PARAMETERS, CityData

MAX_LISTED = 60  # known values named in a 422; a city with more says how many were left out


def declared(config_areas: Iterable[str], query: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """The (name, value) pairs of the query that are area filters the city declares."""
    return tuple(
        (name, value.strip())
        for name, value in query
        if name in config_areas and name not in LIST_PARAMETERS and value.strip()
    )


@lru_cache(maxsize=8)
def _boundary_names(path: Path, name_property: str) -> tuple[str, ...]:
    return tuple(sorted({ring.name for ring in _area_rings(path, name_property) if ring.name}))


def known_values(data: CityData, name: str) -> tuple[str, ...]:
    """The values of a city's `[areas]` filter `name` in its data, sorted."""
    column = data.inspections.get(f"area_{name}")
    return () if column is None else tuple(sorted(set(column.dropna().astype(str))))


def _listing(values: tuple[str, ...]) -> str:
    shown = ", ".join(values[:MAX_LISTED])
    more = len(values) - MAX_LISTED
    return shown + (f" (and {more} more)" if more > 0 else "")


def resolve(
    data: CityData, community_area: str | None, areas: tuple[tuple[str, str], ...]
) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """The filters as the city writes its values (matched without regard to case); InvalidRequest
    naming each unknown value and the known ones."""
    config = data.config
    problems = []
    resolved = []
    for name, value in declared(config.area_filters, areas):
        known = known_values(data, name)
        match = next((each for each in known if each.casefold() == value.casefold()), None)
        if match is None:
            problems.append(Problem(("query", name), f"unknown {name} {value!r}; known: {_listing(known)}"))
        else:
            resolved.append((name, match))
    if community_area is not None:
        if config.map_boundaries is None:
            others = ", ".join(config.area_filters) or "zip, facility_type"
            problems.append(
                Problem(
                    ("query", "community_area"),
                    f"{config.display_name} has no community areas (no [map] boundaries); filter by {others}",
                )
            )
        else:
            known = _boundary_names(config.map_boundaries, config.map_name_property)
            match = next((each for each in known if each.casefold() == community_area.casefold()), None)
            if match is None:
                problems.append(
                    Problem(
                        ("query", "community_area"),
                        f"unknown community_area {community_area!r}; known: {_listing(known)}",
                    )
                )
            community_area = match
    if problems:
        raise InvalidRequest(f"{len(problems)} unknown area filter value(s)", tuple(problems))
    return community_area, tuple(resolved)
