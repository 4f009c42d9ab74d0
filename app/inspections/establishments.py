"""An establishment's risk as of a date, computed from the city's data (a partner route)."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from app.inspections.cities import CityStore, EstablishmentFeatures
from app.inspections.daily import DailyLists
from app.inspections.schemas import EstablishmentRisk
from app.platform.deps import SECURITY, PartnerDep, RegistryDep
from app.platform.errors import ModelNotFound, ModelUnavailable
from app.platform.handlers import JSONBytes
from app.platform.schemas import IsoDate, partner_errors

router = APIRouter(tags=["scoring"])


async def get_cities(request: Request) -> CityStore:
    cities: CityStore = request.app.state.cities
    return cities


CitiesDep = Annotated[CityStore, Depends(get_cities)]


@router.get(
    "/v1/establishments/{city}/{establishment_id}/risk",
    response_model=EstablishmentRisk,
    responses=partner_errors(401, 404, 422, 503),
    openapi_extra={"security": SECURITY},
)
async def establishment_risk(
    request: Request,
    city: str,
    establishment_id: str,
    _: PartnerDep,
    registry: RegistryDep,
    cities: CitiesDep,
    date: Annotated[
        IsoDate | None,
        Query(description="Inspection date (YYYY-MM-DD); default: the day after the city's data ends"),
    ] = None,
    model: Annotated[
        str | None, Query(description="Model name; default: the first serving this city")
    ] = None,
) -> Response:
    """Risk of an establishment's next inspection, from features computed on the city's own data and
    the outcomes recorded through `POST /v1/inspections/{city}/outcomes` (as the daily list does)."""
    await anyio.to_thread.run_sync(cities.city, city)  # 404 for an unknown city; loads data on first use
    snapshot = registry.snapshot
    serving = [m for m in snapshot.for_city(city) if model is None or m.name == model]
    if not serving:
        if model is not None:
            raise ModelNotFound(f"no loaded model {model!r} serves city {city!r}")
        raise ModelUnavailable(f"no loaded model serves city {city!r}")
    loaded = serving[0]
    lists: DailyLists = request.app.state.daily_lists

    # The recorded outcomes and the features in one thread hop (city_data: 503 if the database is down).
    def features() -> EstablishmentFeatures:
        return cities.features(city, establishment_id, date, loaded.layout, lists.city_data(city))

    found = await anyio.to_thread.run_sync(features)
    result = loaded.score_batch(found.batch)[0]
    return JSONBytes(
        {
            "city": city,
            "establishment": found.establishment,
            "date": found.as_of.isoformat(),
            "data_until": found.data_until.isoformat(),
            "model": loaded.name,
            "version": loaded.version,
            **result,
            "features": found.values,
        }
    )
