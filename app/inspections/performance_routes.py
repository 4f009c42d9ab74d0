"""`GET /v1/models/{name}/performance`: how an inspection model's issued lists did, by week, on the
outcomes posted back (app/inspections/performance.py)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Query, Request

from app.inspections.daily import INSPECTION_TASK, DailyLists
from app.inspections.performance import DEFAULT_WEEKS, MAX_DAYS, model_performance
from app.inspections.schemas import ModelPerformance
from app.platform.deps import SECURITY, PartnerDep, RegistryDep
from app.platform.errors import ModelNotFound
from app.platform.schemas import ErrorResponse, IsoDate

router = APIRouter(prefix="/v1/models", tags=["inspections"])


@router.get(
    "/{name}/performance",
    response_model=ModelPerformance,
    openapi_extra={"security": SECURITY},
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid API key"},
        403: {"model": ErrorResponse, "description": "The key lacks the `inspections` scope"},
        404: {"model": ErrorResponse, "description": "Unknown model, or not an inspection model"},
        422: {"model": ErrorResponse, "description": "A bad since/until (named in details)"},
        503: {"model": ErrorResponse, "description": "No API key configured, or the database is down"},
    },
)
async def model_performance_route(
    request: Request,
    _: PartnerDep,
    name: str,
    registry: RegistryDep,
    since: Annotated[
        IsoDate | None, Query(description=f"YYYY-MM-DD; default: {DEFAULT_WEEKS} weeks before until")
    ] = None,
    until: Annotated[
        IsoDate | None,
        Query(description=f"YYYY-MM-DD; default: the newest posted outcome. At most {MAX_DAYS} days"),
    ] = None,
) -> dict[str, Any]:
    """By week: AUC, precision in the top 10%/20%, days earlier and each tier's share with a critical
    violation (each with its count) of the model's issued lists, on outcomes posted for their
    inspections (`POST /v1/inspections/{city}/outcomes`). Key with the `inspections` scope."""
    model = registry.snapshot.get(name)
    if model.manifest.get("task", INSPECTION_TASK) != INSPECTION_TASK:
        raise ModelNotFound(f"model {name!r} is not an inspection model: it issues no daily lists")
    lists: DailyLists = request.app.state.daily_lists
    return await anyio.to_thread.run_sync(model_performance, lists, model, since, until)
