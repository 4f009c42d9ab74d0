"""Prometheus scrape endpoint."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from app.platform.deps import MetricsDep, RegistryDep

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"example": "civicrisk_models_loaded 1.0\n"}}}},
)
async def metrics_endpoint(metrics: MetricsDep, registry: RegistryDep) -> Response:
    """Requests and latency by route and model, records scored, models loaded (Prometheus text)."""
    await anyio.to_thread.run_sync(metrics.refresh)
    snapshot = registry.snapshot
    metrics.models_loaded.set(snapshot.count)
    metrics.bundles_failed.set(len(snapshot.failures))
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
