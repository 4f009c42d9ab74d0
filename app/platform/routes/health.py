"""Liveness and readiness for orchestrators and the Docker HEALTHCHECK."""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.platform.deps import RegistryDep
from app.platform.errors import ModelUnavailable
from app.platform.keys import PartnerKeys
from app.platform.schemas import ErrorResponse, Live, Ready

router = APIRouter(prefix="/health", tags=["health"])


@router.get("/live", response_model=Live)
async def live() -> Live:
    """The process is up and answering."""
    return Live()


@router.get(
    "/ready",
    response_model=Ready,
    responses={503: {"model": ErrorResponse, "description": "No model loaded"}},
)
async def ready(request: Request, registry: RegistryDep) -> dict[str, object]:
    """Ready to score: at least one verified model is loaded. Says which dependency is down, and
    whether the last reload was refused (the last good set serves: still ready)."""
    count = registry.snapshot.count
    if count == 0:
        raise ModelUnavailable("no model is loaded; GET /v1/models lists refused bundles and why")
    keys: PartnerKeys = request.app.state.partner_keys
    return {
        "status": "ready",
        "models_loaded": count,
        "model_set": request.app.state.model_set.state(),
        "dependencies": {"database": keys.database_status()},
    }
