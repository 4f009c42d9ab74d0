"""Operator endpoints: reload the models directory without a restart."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request

from app.platform.deps import SECURITY, AdminDep, MetricsDep, RegistryDep
from app.platform.heap import settle_heap
from app.platform.schemas import ErrorResponse, Reloaded

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=Reloaded,
    responses={
        401: {"model": ErrorResponse, "description": "Missing or invalid admin key"},
        503: {"model": ErrorResponse, "description": "No admin key configured"},
    },
    openapi_extra={"security": SECURITY},
)
async def reload(
    request: Request, _: AdminDep, registry: RegistryDep, metrics: MetricsDep
) -> dict[str, object]:
    """Re-verify and load every bundle, then swap atomically; in-flight requests finish on the old models."""
    snapshot = await anyio.to_thread.run_sync(registry.reload)
    if request.app.state.freeze_heap:
        # The new models out of the collector's sight too, as start-up's were (app.platform.heap.settle_heap):
        # one full collection now, instead of every later one walking them. (The models dropped
        # leave no reference cycles: freed by reference counting though frozen; measured.)
        await anyio.to_thread.run_sync(settle_heap)
    metrics.bundles_failed.set(len(snapshot.failures))
    return {
        "models_loaded": snapshot.count,
        "failures": [vars(failure) for failure in snapshot.failures],
        "loaded_at": snapshot.loaded_at,
    }
